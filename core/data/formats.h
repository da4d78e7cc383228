#pragma once
// Dataset annotation readers: the files the anchors' data loaders read, parsed
// into kinema::data::Sample records.
//
// Every reader takes a ReadOptions. A malformed line or record raises a
// c10::Error whose message starts with "PATH:LINE: " under OnError::Raise, or
// is skipped and counted in ReadOptions::skipped under OnError::Skip. A file
// that cannot be opened or is malformed as a whole (bad JSON document, missing
// header column) always raises.
#include "core/data/sample.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kinema::data {

enum class OnError { Raise, Skip };

struct ReadOptions {
  std::string video_root;   // prefix joined to relative video paths ("" = keep relative)
  std::string region_root;  // prefix joined to per-video region dirs ("" = no region_path)
  std::string video_ext = ".mp4";
  // Side files (formats_sidecar.cpp), attached by read_annotations to every format:
  //  detections_root: the detections of each video, {detections_root}/{id}.json
  //    (the plain per-frame layout or a VinVL-style list of frames), {id}.tsv
  //    (VinVL predictions) or a folder {id}/ of bottom-up-attention .npz frames
  //    (detections.h: read_video_detections), recorded as Sample::boxes_path and
  //    read by the loader's workers (a malformed file is reported there and its
  //    sample replaced); a video without one has no boxes (the loader then gives
  //    all-invalid rows). The first file's top-level "classes" list length is
  //    kept as extra["num_classes"] (else the 1600 Visual Genome classes apply).
  //  meta: a JSONL with {"videoid", "caption"?, "nouns", "verbs", "noun_phrases",
  //    "tags"} per line (kinema synth's *_meta.jsonl) matched to samples by id
  //    (or page_dir/videoid): fills Sample::parts (for the caption equal to
  //    "caption", or the only caption) and Sample::tags.
  std::string detections_root;
  std::string meta;
  OnError on_error = OnError::Raise;
  // Video ids and sub-folders read from annotations stay below their roots: an
  // absolute path or a '..' component is an error unless this is set.
  bool allow_outside_root = false;
  // Out: records skipped under OnError::Skip (accumulates across calls).
  int64_t* skipped = nullptr;
};

// "a/b" joined the way os.path.join does: an empty root keeps `rel`, an
// absolute `rel` wins.
std::string join_path(const std::string& root, const std::string& rel);

// ---- WebVid / CC-style tables ----------------------------------------------

// WebVid CSV (RFC 4180 quoting; the header must name videoid, name and
// page_dir; contentUrl/duration are kept in Sample::extra when present).
// Video at {video_root}/{page_dir}/{videoid}{video_ext}; region dir at
// {region_root}/{page_dir}/{videoid}.
std::vector<Sample> read_webvid_csv(const std::string& path, const ReadOptions& options = {});

// The OA-Trans / DemoVLP metadata TSV: `caption \t page_dir/videoid` per line,
// no header unless has_header (pandas' read_csv(sep='\t') default consumes the
// first line as one). Video at {video_root}/{rel}{video_ext}, region dir at
// {region_root}/{rel}. Fields may be quoted as in RFC 4180.
std::vector<Sample> read_caption_tsv(const std::string& path, const ReadOptions& options = {},
                                     bool has_header = false);

// ---- MSR-VTT ----------------------------------------------------------------

// CLIP4Clip layout: MSRVTT_data.json {videos:[{video_id, split, ...}],
// sentences:[{video_id, caption, sen_id}]}. split_csv selects the videos:
//   - "" : every video in the JSON, one Sample per video with all captions;
//   - a table with a video_id column and no sentence column (MSRVTT_train.9k.csv):
//     one Sample per listed video with all its captions;
//   - a table with key,vid_key,video_id,sentence (MSRVTT_JSFUSION_test.csv): one
//     Sample per row with exactly that sentence (the 1k-A test protocol).
// json_split ("train"/"validate"/"test", "" = any) further filters by the JSON's
// split field when split_csv is empty. Video at {video_root}/{video_id}{video_ext}.
std::vector<Sample> read_msrvtt(const std::string& data_json, const std::string& split_csv = "",
                                const ReadOptions& options = {},
                                const std::string& json_split = "");

// Frozen-in-Time layout: annotation/MSR_VTT.json {annotations:[{image_id,
// caption, ...}]} and a split list (one video id per line, e.g.
// train_list_jsfusion.txt; "" = every video). One Sample per video, captions in
// file order.
std::vector<Sample> read_msrvtt_coco(const std::string& annotation_json,
                                     const std::string& split_list = "",
                                     const ReadOptions& options = {});

// ---- ALPRO / DemoVLP JSONL --------------------------------------------------

// Retrieval: {"clip_name", "caption"} per line, caption a string or a list of
// strings. Optional "retrieval_key" lands in extra.
std::vector<Sample> read_alpro_retrieval(const std::string& jsonl, const ReadOptions& options = {});

// ans2label JSON: {"answer": label, ...}.
std::map<std::string, int64_t> read_ans2label(const std::string& path);

// Open-ended QA: {"question", "answer", "video_id" | "clip_name" | "gif_name",
// "answer_type"?} per line. answer_label is ans2label[answer], or -1 when the
// answer is outside the vocabulary (kept: evaluation counts it as wrong).
std::vector<Sample> read_alpro_qa(const std::string& jsonl,
                                  const std::map<std::string, int64_t>& ans2label,
                                  const ReadOptions& options = {});

// Multiple choice: {"clip_name", "options": [..], "answer": int or "int",
// "qid"?} per line; answer_label is the index of the correct option (checked
// to be in range) and answer its text.
std::vector<Sample> read_alpro_mc(const std::string& jsonl, const ReadOptions& options = {});

// ---- One entry point (for the Lua binding and the CLI) ----------------------

struct AnnotationSource {
  // "webvid" | "caption_tsv" | "msrvtt" | "msrvtt_coco" | "alpro_retrieval" |
  // "alpro_qa" | "alpro_mc"
  std::string format;
  std::string path;        // the annotation file
  std::string split;       // msrvtt: split CSV; msrvtt_coco: split list ("" = all)
  std::string json_split;  // msrvtt: keep videos of this JSON split ("" = all)
  std::string ans2label;   // alpro_qa: the answer vocabulary JSON (required)
  bool has_header = false; // caption_tsv
};

// Reads the side files of options (detections_root, meta) into the samples.
void attach_sidecars(std::vector<Sample>& samples, const ReadOptions& options);

// Dispatches to the reader of source.format (an unknown format raises, listing
// the known ones), then attach_sidecars.
std::vector<Sample> read_annotations(const AnnotationSource& source, const ReadOptions& options = {});

}  // namespace kinema::data

#pragma once
// A word-level WordPiece vocabulary built from captions, so a synthetic or
// small dataset needs no downloaded vocabulary: [PAD] [UNK] [CLS] [SEP] [MASK]
// (ids 0..4), then every word of BERT's basic tokenisation (lower-cased,
// punctuation split off) seen at least min_count times, most frequent first
// (ties in byte order, so the file does not depend on input order).
// WordPieceTokenizer reads the written file as it reads BERT's vocab.txt.
#include <cstdint>
#include <string>
#include <vector>

namespace kinema::data {

std::vector<std::string> build_word_vocab(const std::vector<std::string>& texts, int64_t min_count = 1);

// One token per line (id = line number); throws naming the path on I/O failure.
void write_vocab(const std::string& path, const std::vector<std::string>& vocab);

}  // namespace kinema::data

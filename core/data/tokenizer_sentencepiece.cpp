#include "core/data/tokenizer_sentencepiece.h"

#include <c10/util/Exception.h>
#include <dlfcn.h>
#include <sentencepiece_processor.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <unordered_map>

#include "core/data/tokenizer_unicode.h"

namespace kinema::data {

namespace {

using Processor = sentencepiece::SentencePieceProcessor;

// Layout of sentencepiece::util::Status (one owning pointer, non-trivial
// destructor, so returned through a hidden pointer like the real one). Using
// it instead of the real class keeps every Status symbol out of our object
// files; the library's own destructor and ToString() are called through dlsym.
struct StatusAbi {
  void* rep = nullptr;
  StatusAbi() = default;
  StatusAbi(const StatusAbi&) = delete;
  StatusAbi& operator=(const StatusAbi&) = delete;
  ~StatusAbi();
  bool ok() const { return rep == nullptr; }
  std::string message() const;
};

// Entry points of libsentencepiece{,_train}.so.0, resolved once.
struct Library {
  void (*construct)(void* self) = nullptr;                 // SentencePieceProcessor()
  void (*destroy_status)(void* self) = nullptr;            // util::Status::~Status()
  std::string (*status_string)(const void* self) = nullptr;  // util::Status::ToString()
  std::string (*serialized)(const void* self) = nullptr;   // serialized_model_proto()
  void (*set_seed)(unsigned int) = nullptr;                // SetRandomGeneratorSeed
  StatusAbi (*train)(const std::unordered_map<std::string, std::string>&, void* iterator,
                     std::string* model) = nullptr;        // SentencePieceTrainer::Train(kwargs)

  static const Library& get() {
    static const Library library = open();
    return library;
  }

 private:
  static void* open_library(const char* name) {
    void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    TORCH_CHECK(handle, "kinema::SentencePieceTokenizer: cannot open ", name, " (install ",
                "libsentencepiece0): ", dlerror());
    return handle;
  }
  template <typename Fn>
  static void resolve(void* handle, const char* symbol, Fn& fn) {
    void* address = dlsym(handle, symbol);
    TORCH_CHECK(address, "kinema::SentencePieceTokenizer: symbol ", symbol,
                " missing from libsentencepiece (version 0.1.9x expected)");
    fn = reinterpret_cast<Fn>(address);
  }
  static Library open() {
    Library lib;
    void* core = open_library("libsentencepiece.so.0");
    void* trainer = open_library("libsentencepiece_train.so.0");
    resolve(core, "_ZN13sentencepiece22SentencePieceProcessorC1Ev", lib.construct);
    resolve(core, "_ZN13sentencepiece4util6StatusD1Ev", lib.destroy_status);
    resolve(core, "_ZNK13sentencepiece4util6Status8ToStringB5cxx11Ev", lib.status_string);
    resolve(core, "_ZNK13sentencepiece22SentencePieceProcessor22serialized_model_protoB5cxx11Ev",
            lib.serialized);
    resolve(core, "_ZN13sentencepiece22SetRandomGeneratorSeedEj", lib.set_seed);
    resolve(trainer,
            "_ZN13sentencepiece20SentencePieceTrainer5TrainERKSt13unordered_mapINSt7__cxx1112basic_"
            "stringIcSt11char_traitsIcESaIcEEES7_St4hashIS7_ESt8equal_toIS7_ESaISt4pairIKS7_S7_"
            "EEEPNS_16SentenceIteratorEPS7_",
            lib.train);
    return lib;
  }
};

StatusAbi::~StatusAbi() {
  if (rep) Library::get().destroy_status(this);
}

std::string StatusAbi::message() const { return ok() ? "OK" : Library::get().status_string(this); }

// The processor's Status-returning methods are virtual: calling them through
// a member pointer whose return type is StatusAbi goes through the vtable and
// references no symbol. Same ABI (both returned through a hidden pointer).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-function-type"
template <typename... Args, typename Real>
auto as_status_call(Real method) {
  return reinterpret_cast<StatusAbi (Processor::*)(Args...)>(method);
}
template <typename... Args, typename Real>
auto as_const_status_call(Real method) {
  return reinterpret_cast<StatusAbi (Processor::*)(Args...) const>(method);
}
#pragma GCC diagnostic pop

using sentencepiece::util::Status;

StatusAbi load_file(Processor& p, const std::string& path) {
  auto fn = as_status_call<absl::string_view>(
      static_cast<Status (Processor::*)(absl::string_view)>(&Processor::Load));
  return (p.*fn)(path);
}

StatusAbi load_serialized(Processor& p, const std::string& model) {
  auto fn = as_status_call<absl::string_view>(&Processor::LoadFromSerializedProto);
  return (p.*fn)(model);
}

std::unique_ptr<Processor> new_processor() {
  void* memory = ::operator new(sizeof(Processor));
  Library::get().construct(memory);
  return std::unique_ptr<Processor>(static_cast<Processor*>(memory));
}

std::string lower(const std::string& text) {
  return unicode::encode_utf8(unicode::to_lower(unicode::decode_utf8(text)));
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path, bool lower_case)
    : processor_(new_processor()), lower_case_(lower_case) {
  const StatusAbi status = load_file(*processor_, model_path);
  TORCH_CHECK(status.ok(), "kinema::SentencePieceTokenizer: cannot load model '", model_path,
              "': ", status.message());
  find_special_ids();
}

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<Processor> processor,
                                               bool lower_case)
    : processor_(std::move(processor)), lower_case_(lower_case) {
  find_special_ids();
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::shared_ptr<SentencePieceTokenizer> SentencePieceTokenizer::train(
    const std::vector<std::string>& captions, const SentencePieceTrainOptions& options) {
  TORCH_CHECK(!captions.empty(), "kinema::SentencePieceTokenizer::train: no captions given");
  TORCH_CHECK(options.vocab_size > 5, "kinema::SentencePieceTokenizer::train: vocab_size ",
              options.vocab_size, " must exceed the 5 special tokens");
  // The corpus goes through a temporary file: the trainer's in-memory
  // iterator interface would need the library's Status type in our code.
  char corpus_path[] = "/tmp/kinema_spm_corpus_XXXXXX";
  const int fd = mkstemp(corpus_path);
  TORCH_CHECK(fd >= 0, "kinema::SentencePieceTokenizer::train: cannot create a temporary file");
  close(fd);
  struct Remove {
    const char* path;
    ~Remove() { std::remove(path); }
  } remove_corpus{corpus_path};
  {
    std::ofstream out(corpus_path, std::ios::binary);
    for (const auto& caption : captions) {
      std::string line = options.lower_case ? lower(caption) : caption;
      for (char& c : line)
        if (c == '\n' || c == '\r') c = ' ';
      out << line << '\n';
    }
    TORCH_CHECK(out.good(), "kinema::SentencePieceTokenizer::train: writing ", corpus_path,
                " failed");
  }
  const std::unordered_map<std::string, std::string> args = {
      {"input", corpus_path},
      {"model_type", options.model_type},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"num_threads", std::to_string(options.num_threads)},
      {"pad_id", "0"}, {"pad_piece", "[PAD]"},
      {"unk_id", "1"}, {"unk_piece", "[UNK]"},
      {"bos_id", "2"}, {"bos_piece", "[CLS]"},
      {"eos_id", "3"}, {"eos_piece", "[SEP]"},
      {"control_symbols", "[MASK]"},
      // Captions are short: keep every one; the vocabulary may end up smaller
      // than asked on a tiny corpus rather than failing.
      {"input_sentence_size", "0"},
      {"hard_vocab_limit", "false"},
      {"normalization_rule_name", options.normalization},
  };
  const Library& lib = Library::get();
  lib.set_seed(static_cast<unsigned int>(options.seed));
  std::string model;
  const StatusAbi status = lib.train(args, nullptr, &model);
  TORCH_CHECK(status.ok(), "kinema::SentencePieceTokenizer::train: ", status.message());
  auto processor = new_processor();
  const StatusAbi loaded = load_serialized(*processor, model);
  TORCH_CHECK(loaded.ok(), "kinema::SentencePieceTokenizer::train: trained model does not load: ",
              loaded.message());
  return std::shared_ptr<SentencePieceTokenizer>(
      new SentencePieceTokenizer(std::move(processor), options.lower_case));
}

void SentencePieceTokenizer::find_special_ids() {
  special_.unk = processor_->unk_id();
  const int64_t cls = token_to_id("[CLS]"), sep = token_to_id("[SEP]");
  const int64_t pad = token_to_id("[PAD]"), mask = token_to_id("[MASK]");
  special_.cls = cls >= 0 ? cls : processor_->bos_id();
  special_.sep = sep >= 0 ? sep : processor_->eos_id();
  special_.pad = pad >= 0 ? pad : processor_->pad_id();
  if (special_.pad < 0) special_.pad = special_.sep;
  special_.mask = mask >= 0 ? mask : token_to_id("<mask>");
}

std::string SentencePieceTokenizer::prepare(const std::string& text) const {
  return lower_case_ ? lower(text) : text;
}

void SentencePieceTokenizer::save(const std::string& model_path) const {
  std::ofstream out(model_path, std::ios::binary);
  TORCH_CHECK(out, "kinema::SentencePieceTokenizer::save: cannot write '", model_path, "'");
  const std::string model = serialized_model();
  out.write(model.data(), static_cast<std::streamsize>(model.size()));
  TORCH_CHECK(out.good(), "kinema::SentencePieceTokenizer::save: write to '", model_path,
              "' failed");
}

std::string SentencePieceTokenizer::serialized_model() const {
  return Library::get().serialized(processor_.get());
}

std::vector<std::string> SentencePieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> pieces;
  auto fn = as_const_status_call<absl::string_view, std::vector<std::string>*>(
      static_cast<Status (Processor::*)(absl::string_view, std::vector<std::string>*) const>(
          &Processor::Encode));
  const StatusAbi status = ((*processor_).*fn)(prepare(text), &pieces);
  TORCH_CHECK(status.ok(), "kinema::SentencePieceTokenizer::tokenize: ", status.message());
  return pieces;
}

std::vector<int64_t> SentencePieceTokenizer::encode_pieces(const std::string& text) const {
  std::vector<int> ids;
  auto fn = as_const_status_call<absl::string_view, std::vector<int>*>(
      static_cast<Status (Processor::*)(absl::string_view, std::vector<int>*) const>(
          &Processor::Encode));
  const StatusAbi status = ((*processor_).*fn)(prepare(text), &ids);
  TORCH_CHECK(status.ok(), "kinema::SentencePieceTokenizer::encode: ", status.message());
  return {ids.begin(), ids.end()};
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids,
                                           bool skip_special) const {
  std::vector<int> kept;
  for (int64_t id : ids) {
    TORCH_CHECK(id >= 0 && id < vocab_size(), "kinema::SentencePieceTokenizer::decode: id ", id,
                " outside the vocabulary [0, ", vocab_size(), ")");
    if (skip_special && is_special(id)) continue;
    kept.push_back(static_cast<int>(id));
  }
  std::string text;
  auto fn = as_const_status_call<const std::vector<int>&, std::string*>(
      static_cast<Status (Processor::*)(const std::vector<int>&, std::string*) const>(
          &Processor::Decode));
  const StatusAbi status = ((*processor_).*fn)(kept, &text);
  TORCH_CHECK(status.ok(), "kinema::SentencePieceTokenizer::decode: ", status.message());
  return text;
}

int64_t SentencePieceTokenizer::vocab_size() const { return processor_->GetPieceSize(); }

int64_t SentencePieceTokenizer::token_to_id(const std::string& token) const {
  const int id = processor_->PieceToId(token);
  return processor_->IdToPiece(id) == token ? id : -1;
}

std::string SentencePieceTokenizer::id_to_token(int64_t id) const {
  TORCH_CHECK(id >= 0 && id < vocab_size(), "kinema::SentencePieceTokenizer::id_to_token: id ",
              id, " outside the vocabulary [0, ", vocab_size(), ")");
  return processor_->IdToPiece(static_cast<int>(id));
}

}  // namespace kinema::data

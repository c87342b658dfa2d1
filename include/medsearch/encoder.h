// bert_encoder.h: a BERT sentence encoder (sentence-transformers layout) in
// Eigen: embeddings + layer norm, self-attention with padding masks, GELU
// feed-forward, residual layer norms, mean or CLS pooling, L2 normalisation.
//
// A model directory holds config.json, vocab.txt, model.safetensors and,
// optionally, sentence_bert_config.json (max_seq_length) and
// 1_Pooling/config.json (pooling mode); tools/fetch_model.sh makes one.
//
// Batches are bucketed by length and run as GEMMs; batches run in parallel
// with oneTBB in the caller's arena. Thread-safe. A batch packs its texts'
// tokens without padding and attention runs per text, which gives what the
// padded, masked computation gives.
//
// Cost (all-MiniLM-L6-v2): load about 0.1 s (reads and checksums the 91 MB
// file); about 90 MB of weights in memory in float32 (bfloat16: the dense
// layers' 42 MB become 21 MB), plus a reused workspace of about 4 MB per
// batch running at once. flops(tokens) per text; the throughput
// against the machine's SGEMM rate is in bench/embed/encoder_bench.cc.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <medsearch/embedder.h>
#include <medsearch/tokenizer.h>

namespace medsearch::embed {

enum class Pooling : uint8_t { kMean = 0, kCls = 1 };

// Arithmetic of the dense layers (embeddings, attention, layer norms and
// pooling are float32 either way).
//  kFloat32   Eigen SGEMM; reproduces the reference runtime's vectors to
//             cosine >= 0.9999 (tests/embed/bert_encoder_test.cc).
//  kBFloat16  inputs and weights rounded to bfloat16, products summed in
//             float32, on Intel AMX tiles (kernels/bf16_gemm.h): several
//             times faster; cosine >= 0.999 to the reference. Needs a CPU
//             with AMX-BF16; load() says so when it is missing.
// The vectors of both are the same model's (same model_id), so an index
// built with one can be queried with the other.
enum class Precision : uint8_t { kFloat32 = 0, kBFloat16 = 1 };

// "float32" / "bfloat16" (also "fp32", "f32", "bf16"), or "auto": bfloat16
// where precision_available() says so, else float32; kInvalidArgument
// otherwise.
Result<Precision> parse_precision(std::string_view name);
// $MEDSEARCH_ENCODER_PRECISION parsed as above when set, else "auto". What
// the CLI, Python and the benchmarks load when not told otherwise.
Result<Precision> default_precision();
const char* precision_name(Precision p);
// Whether this build and machine can run `p` (kFloat32: always); if not,
// *why says what is missing.
bool precision_available(Precision p, std::string* why = nullptr);

struct BertConfig {
  uint32_t hidden = 384;
  uint32_t layers = 6;
  uint32_t heads = 12;
  uint32_t intermediate = 1536;
  uint32_t max_position = 512;
  uint32_t vocab = 30522;
  uint32_t type_vocab = 2;
  float layer_norm_eps = 1e-12f;
  Pooling pooling = Pooling::kMean;
  bool normalize = true;
  uint32_t max_seq_length = 256;  // tokens per text incl. [CLS]/[SEP]; longer texts are truncated
  std::string query_prefix;       // prepended to queries (bge: "Represent this sentence ...: ")
};

// The models this build accepts (their weights are pinned by checksum), the
// default first.
std::vector<std::string> known_models();

// Where tools/fetch_model.sh puts a known model (by name, case-insensitive, or
// folder): ${MEDSEARCH_CACHE:-${XDG_CACHE_HOME:-~/.cache}/medsearch}/models/<folder>.
// kInvalidArgument for a name this build does not know.
Result<std::filesystem::path> model_dir(std::string_view name);

// The default model directory: $MEDSEARCH_MODEL_DIR, else model_dir(known_models()[0]).
std::filesystem::path default_model_dir();

// The directory of the model an index's vectors were made with (its model_id,
// "name@checksum"): $MEDSEARCH_MODEL_DIR, else that model's folder, else the default.
std::filesystem::path model_dir_for(std::string_view model_id);

class BertEncoder final : public Embedder {
 public:
  ~BertEncoder() override;
  // Loads and verifies a model directory. A missing, truncated or
  // wrong-checksum weight file is a clear error that says how to fetch it.
  static Result<std::unique_ptr<BertEncoder>> load(const std::filesystem::path& model_dir,
                                                    Precision precision = Precision::kFloat32);

  uint32_t dim() const override;
  std::string model_id() const override;
  Status embed(std::span<const std::string_view> texts, TextKind kind, std::span<float> out) const override;

  // Embeds already-tokenized inputs ([CLS] ... [SEP] ids), for golden tests.
  // Each sequence needs 1 to config().max_position ids below vocab, else
  // kInvalidArgument; it is not truncated.
  Status embed_ids(std::span<const std::vector<int32_t>> batch, std::span<float> out) const;

  const WordPieceTokenizer& tokenizer() const;
  const BertConfig& config() const;
  Precision precision() const;
  // FLOPs of one forward pass over a sequence of `tokens` tokens (for rooflines).
  double flops(uint32_t tokens) const;

 private:
  BertEncoder();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The encoder that embeds queries for an index whose vectors model_id made
// (IndexStats::model_id): BertEncoder::load(model_dir_for(model_id)) at
// `precision`, else default_precision(). kInvalidArgument when the model
// found there is another one (its model_id differs); load()'s errors when it
// is missing or damaged. What the CLI and Index.load(encoder="auto") use.
Result<std::unique_ptr<BertEncoder>> encoder_for(std::string_view model_id,
                                                 std::optional<Precision> precision = std::nullopt);

}  // namespace medsearch::embed

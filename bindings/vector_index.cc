// Python surface of core/vector/vector_index.h: medsearch.VectorIndex.
// Converts, checks shapes, releases the GIL around the batched core calls,
// and turns a failed Status into an exception (bindings/status.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <optional>

#include <medsearch/vector_index.h>

#include "bindings/arena.h"
#include "bindings/status.h"

namespace py = pybind11;

namespace medsearch::bindings {
namespace {

using vector::DocId;
using vector::VectorIndex;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// float32 C-contiguous arrays pass through without a copy; anything numeric
// (float64, int, lists) is converted to float32 (a copy). A 1-D array is one row.
FloatArray as_rows(const py::handle& obj, size_t dim, const char* what) {
  FloatArray a = FloatArray::ensure(obj);
  if (!a) {
    PyErr_Clear();
    throw py::value_error(std::string(what) + " must be a numeric array of shape (n, " + std::to_string(dim) + ")");
  }
  if (a.ndim() == 1) a = a.reshape({py::ssize_t{1}, a.shape(0)});
  if (a.ndim() != 2) {
    throw py::value_error(std::string(what) + " must have shape (n, " + std::to_string(dim) + "), got " +
                          std::to_string(a.ndim()) + " dimensions");
  }
  if (static_cast<size_t>(a.shape(1)) != dim) {
    throw py::value_error(std::string(what) + " have dimension " + std::to_string(a.shape(1)) + ", the index has " +
                          std::to_string(dim));
  }
  return a;
}

// Integer ids with 0 <= id < 2^32 - 1; anything else is a ValueError.
std::vector<DocId> as_ids(const py::handle& obj, const char* what) {
  py::array arr = py::array::ensure(obj);
  if (!arr) {
    PyErr_Clear();
    throw py::value_error(std::string(what) + " must be a sequence of integers");
  }
  if (arr.size() == 0) return {};
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u') throw py::value_error(std::string(what) + " must be integers, got dtype " + std::string(py::str(arr.dtype())));
  auto ints = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(arr);
  if (kind == 'u' && arr.dtype().itemsize() == 8) {
    auto u = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>::ensure(arr);
    for (py::ssize_t i = 0; i < u.size(); ++i) {
      if (u.data()[i] >= vector::kInvalidDocId) throw py::value_error(std::string(what) + " must be below 2^32 - 1");
    }
  }
  std::vector<DocId> out(static_cast<size_t>(ints.size()));
  const int64_t* p = ints.data();
  for (size_t i = 0; i < out.size(); ++i) {
    if (p[i] < 0 || p[i] >= int64_t{vector::kInvalidDocId}) {
      throw py::value_error(std::string(what) + ": id " + std::to_string(p[i]) + " is outside [0, 2^32 - 1)");
    }
    out[i] = static_cast<DocId>(p[i]);
  }
  return out;
}

std::unique_ptr<VectorIndex> make(int64_t dim, const std::string& metric, const std::string& kind,
                                  const std::string& dtype, int64_t M, int64_t ef_construction, bool keep_float32) {
  vector::IndexOptions o;
  if (dim <= 0) throw py::value_error("dim must be positive");
  o.dim = static_cast<size_t>(dim);
  if (metric == "ip") o.metric = vector::Metric::kInnerProduct;
  else if (metric == "l2") o.metric = vector::Metric::kL2;
  else if (metric == "cosine") o.metric = vector::Metric::kCosine;
  else throw py::value_error("metric must be 'ip', 'l2' or 'cosine', got '" + metric + "'");
  if (kind == "hnsw") o.kind = vector::IndexKind::kHnsw;
  else if (kind == "flat") o.kind = vector::IndexKind::kFlat;
  else throw py::value_error("kind must be 'hnsw' or 'flat', got '" + kind + "'");
  if (dtype == "float32") o.dtype = vector::VectorDType::kFloat32;
  else if (dtype == "int8") o.dtype = vector::VectorDType::kInt8;
  else throw py::value_error("dtype must be 'float32' or 'int8', got '" + dtype + "'");
  if (M < 2 || M > 2048) throw py::value_error("M must be in [2, 2048]");
  if (ef_construction < 1 || ef_construction > 1 << 20) throw py::value_error("ef_construction must be positive");
  o.M = static_cast<uint32_t>(M);
  o.ef_construction = static_cast<uint32_t>(ef_construction);
  o.keep_float32 = keep_float32;
  return unwrap(vector::make_vector_index(o));
}

const char* metric_name(vector::Metric m) {
  return m == vector::Metric::kL2 ? "l2" : m == vector::Metric::kCosine ? "cosine" : "ip";
}

}  // namespace

void init_vector_index(py::module_& m) {
  py::class_<VectorIndex>(m, "VectorIndex", R"doc(
k-nearest-neighbour search over fixed-dimension float vectors.

kind="hnsw": approximate (hnswlib graph with our SIMD kernels); kind="flat":
exact brute force. dtype="int8" (hnsw only) stores one byte per component in
the graph and rescores the best candidates exactly in float32 (the float32
copy lives in a file-backed mapping, reported by mapped_bytes()).
Scores: inner product / cosine similarity (higher is better) or squared L2
distance (lower is better). Ids are integers 0 <= id < 2**32 - 1.
Thread safety: searches run concurrently with each other and with add();
the GIL is released during add, search, remove, compact, save and load.
)doc")
      .def(py::init(&make), py::arg("dim"), py::arg("metric") = "ip", py::arg("kind") = "hnsw",
           py::arg("dtype") = "float32", py::arg("M") = 16, py::arg("ef_construction") = 200,
           py::arg("keep_float32") = true)
      .def(
          "add",
          [](VectorIndex& self, const py::object& vectors, const py::object& ids, std::optional<int> threads) {
            check_threads(threads);
            FloatArray rows = as_rows(vectors, self.dim(), "vectors");
            std::vector<DocId> id_list;
            if (!ids.is_none()) {
              id_list = as_ids(ids, "ids");
              if (id_list.size() != static_cast<size_t>(rows.shape(0))) {
                throw py::value_error("got " + std::to_string(id_list.size()) + " ids for " +
                                      std::to_string(rows.shape(0)) + " vectors");
              }
            }
            const vector::MatrixView view{rows.data(), static_cast<size_t>(rows.shape(0)), self.dim(), self.dim()};
            Status st;
            {
              py::gil_scoped_release release;
              in_arena(threads, [&] { st = self.add(view, id_list); });
            }
            check(st);
          },
          py::arg("vectors"), py::arg("ids") = py::none(), py::kw_only(), py::arg("threads") = py::none(),
          "Adds vectors (n, dim); float32 C-contiguous input is used without a copy, other numeric input is "
          "converted to float32. ids: n distinct new integer ids, or None for sequential ids starting at "
          "next_id. ValueError on NaN/inf, wrong shape, or ids already present.")
      .def(
          "search",
          [](const VectorIndex& self, const py::object& queries, int64_t k, std::optional<int64_t> ef,
             const py::object& filter, std::optional<int64_t> rescore, std::optional<int> threads) {
            check_threads(threads);
            if (k <= 0) throw py::value_error("k must be at least 1");
            if (k > 1 << 20) throw py::value_error("k is too large");
            if (ef && (*ef <= 0 || *ef > 1 << 20)) throw py::value_error("ef must be positive");
            FloatArray q = as_rows(queries, self.dim(), "queries");
            std::optional<vector::IdFilter> allowed;
            if (!filter.is_none()) allowed.emplace(as_ids(filter, "filter"));
            vector::SearchParams p;
            p.k = static_cast<uint32_t>(k);
            p.ef = ef ? static_cast<uint32_t>(*ef) : 0;
            p.filter = allowed ? &*allowed : nullptr;
            if (rescore) p.rescore = static_cast<int32_t>(std::clamp<int64_t>(*rescore, -1, 1 << 20));
            const size_t n = static_cast<size_t>(q.shape(0));
            // The outputs hold m x k entries (12 bytes each, plus 4 of scratch): refuse absurd sizes
            // before allocating rather than exhaust memory.
            constexpr size_t kMaxResults = size_t{1} << 28;
            if (n > kMaxResults / static_cast<size_t>(k)) {
              throw py::value_error(std::to_string(n) + " queries x k=" + std::to_string(k) +
                                    " results is too many for one call (at most 2**28); search in batches");
            }
            py::array_t<int64_t> ids({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(k)});
            py::array_t<float> scores({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(k)});
            int64_t* ids_out = ids.mutable_data();
            float* scores_out = scores.mutable_data();
            const vector::MatrixView view{q.data(), n, self.dim(), self.dim()};
            Status st;
            {
              py::gil_scoped_release release;
              std::vector<DocId> raw(n * static_cast<size_t>(k));
              in_arena(threads, [&] { st = self.search(view, p, raw, std::span<float>(scores_out, raw.size())); });
              for (size_t i = 0; i < raw.size(); ++i) ids_out[i] = raw[i] == vector::kInvalidDocId ? int64_t{-1} : int64_t{raw[i]};
            }
            check(st);
            return py::make_tuple(ids, scores);
          },
          py::arg("queries"), py::arg("k") = 10, py::arg("ef") = py::none(), py::arg("filter") = py::none(),
          py::kw_only(), py::arg("rescore") = py::none(), py::arg("threads") = py::none(),
          "Returns (ids int64 (m, k), scores float32 (m, k)), best first; -1 / nan where fewer than k vectors "
          "exist or pass the filter. queries: (m, dim) or (dim,), converted to float32 like add(). ef: graph "
          "candidate list (default max(k, 64)); filter: allowed ids (sequence or array); rescore (int8): "
          "candidates rescored in float32 (default max(4k, 40), 0 = none). ValueError on NaN/inf, wrong shape, k < 1,\n"
          "k > 2**20 or m * k > 2**28. threads: at most the machine's concurrency is used.")
      .def(
          "remove",
          [](VectorIndex& self, const py::object& ids) {
            std::vector<DocId> list = as_ids(ids, "ids");
            Status st;
            {
              py::gil_scoped_release release;
              st = self.remove(list);
            }
            check(st);
          },
          py::arg("ids"), "Removes ids (ValueError if any is not in the index; nothing is removed then).")
      .def(
          "compact",
          [](VectorIndex& self) {
            Status st;
            {
              py::gil_scoped_release release;
              st = self.compact();
            }
            check(st);
          },
          "Rebuilds without removed vectors, reclaiming their memory. Searches continue meanwhile.")
      .def(
          "save",
          [](const VectorIndex& self, const std::filesystem::path& path) {
            Status st;
            {
              py::gil_scoped_release release;
              st = self.save(path);
            }
            check(st);
          },
          py::arg("path"), "Writes a versioned, checksummed file (temp file, fsync, rename).")
      .def_static(
          "load",
          [](const std::filesystem::path& path) {
            Result<std::unique_ptr<VectorIndex>> r = Status::internal("unreachable");
            {
              py::gil_scoped_release release;
              r = vector::load_vector_index(path);
            }
            return unwrap(std::move(r));
          },
          py::arg("path"),
          "Opens a saved index. FileNotFoundError if missing, CorruptIndexError if damaged or of another version.")
      .def("memory_bytes", &VectorIndex::memory_bytes,
           "Heap bytes held (graph, int8 or float32 vectors, id maps); excludes mapped_bytes().")
      .def("mapped_bytes", &VectorIndex::mapped_bytes,
           "File-backed bytes (float32 rescoring rows of int8 indexes, rows of a loaded flat index).")
      .def("__len__", &VectorIndex::size)
      .def("__contains__", [](const VectorIndex& self, int64_t id) {
        return id >= 0 && id < int64_t{vector::kInvalidDocId} && self.contains(static_cast<DocId>(id));
      })
      .def_property_readonly("dim", &VectorIndex::dim)
      .def_property_readonly("next_id", &VectorIndex::next_doc_id)
      .def_property_readonly("metric", [](const VectorIndex& self) { return metric_name(self.options().metric); })
      .def_property_readonly("kind", [](const VectorIndex& self) {
        return self.options().kind == vector::IndexKind::kFlat ? "flat" : "hnsw";
      })
      .def_property_readonly("dtype", [](const VectorIndex& self) {
        return self.options().dtype == vector::VectorDType::kInt8 ? "int8" : "float32";
      })
      .def("__repr__", [](const VectorIndex& self) {
        const auto& o = self.options();
        return "VectorIndex(dim=" + std::to_string(o.dim) + ", metric='" + metric_name(o.metric) + "', kind='" +
               (o.kind == vector::IndexKind::kFlat ? "flat" : "hnsw") + "', dtype='" +
               (o.dtype == vector::VectorDType::kInt8 ? "int8" : "float32") + "', len=" + std::to_string(self.size()) + ")";
      });
}

}  // namespace medsearch::bindings

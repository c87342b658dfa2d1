#include <medsearch/build_info.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/status.h"

namespace py = pybind11;

namespace medsearch::bindings {
namespace {
py::handle corrupt_error;
py::handle old_format_error;
py::handle stale_error;
}

void raise(const Status& status) {
  const std::string& msg = status.message();
  switch (status.code()) {
    case StatusCode::kInvalidArgument: throw py::value_error(msg);
    case StatusCode::kNotFound: PyErr_SetString(PyExc_FileNotFoundError, msg.c_str()); break;
    case StatusCode::kUnknownId: PyErr_SetString(PyExc_KeyError, msg.c_str()); break;
    case StatusCode::kCorrupt: PyErr_SetString(corrupt_error.ptr(), msg.c_str()); break;
    case StatusCode::kOldFormat: PyErr_SetString(old_format_error.ptr(), msg.c_str()); break;
    case StatusCode::kStale: PyErr_SetString(stale_error.ptr(), msg.c_str()); break;
    case StatusCode::kIoError: PyErr_SetString(PyExc_OSError, msg.c_str()); break;
    default: PyErr_SetString(PyExc_RuntimeError, msg.c_str()); break;
  }
  throw py::error_already_set();
}

void init_status(py::module_& m) {
  static py::exception<std::runtime_error> exc(m, "CorruptIndexError", PyExc_ValueError);
  exc.doc() = "A file exists but is not a valid medsearch file (truncated, corrupt, wrong version).";
  corrupt_error = exc;
  static py::exception<std::runtime_error> old(m, "OldFormatError", corrupt_error.ptr());
  old.doc() = "A valid index written by an older medsearch, in a format this one does not read: build it again.";
  old_format_error = old;
  static py::exception<std::runtime_error> stale(m, "StaleError", PyExc_RuntimeError);
  stale.doc() = "A request made for another version of the data (a sharded query planned before a change): ask again.";
  stale_error = stale;
}

}  // namespace medsearch::bindings

PYBIND11_MODULE(_core, m) {
  m.doc() = "medsearch native core: passage retrieval over clinical guidelines and literature";
  medsearch::bindings::init_status(m);
  medsearch::bindings::init_encoder(m);
  medsearch::bindings::init_index(m);
  medsearch::bindings::init_vector_index(m);
  medsearch::bindings::init_tokenizer(m);
  medsearch::bindings::init_shard(m);
  m.def(
      "build_info",
      [] {
        const medsearch::BuildInfo info = medsearch::build_info();
        py::dict d;
        d["version"] = info.version;
        d["compiler"] = info.compiler;
        d["baseline"] = info.baseline;
        d["compiled"] = info.compiled;
        d["supported"] = info.supported;
        d["selected"] = info.selected;
        d["requested"] = info.requested;
        d["cpu_features"] = info.cpu_features;
        d["distance_kernels"] = info.distance_kernels;
        d["encoder_float32"] = info.encoder_float32;
        d["encoder_bfloat16"] = info.encoder_bfloat16.empty() ? py::object(py::none()) : py::str(info.encoder_bfloat16);
        d["encoder_bfloat16_reason"] = info.encoder_bfloat16_reason;
        return d;
      },
      "What this build is and which kernels this CPU runs: version, compiler, baseline (-march of the library),\n"
      "compiled (kernel levels in the build), supported (the highest this CPU and OS allow), selected (in use;\n"
      "MEDSEARCH_CPU_LEVEL=v2|v3|v4|amx lowers it), requested, cpu_features, distance_kernels, encoder_float32,\n"
      "encoder_bfloat16 (None when unavailable) and encoder_bfloat16_reason.");
}

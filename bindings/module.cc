#include <pybind11/pybind11.h>

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
}

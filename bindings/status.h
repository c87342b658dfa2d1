// status.h (bindings): the one place where a failed Status becomes a Python exception.
#pragma once

#include <pybind11/pybind11.h>

#include <medsearch/status.h>

namespace medsearch::bindings {

// Raises: kInvalidArgument -> ValueError, kNotFound -> FileNotFoundError, kUnknownId -> KeyError,
// kCorrupt -> medsearch.CorruptIndexError (a ValueError), kOldFormat -> medsearch.OldFormatError
// (a CorruptIndexError), kStale -> medsearch.StaleError (a RuntimeError), kIoError -> OSError,
// anything else -> RuntimeError. Call with the GIL held.
[[noreturn]] void raise(const Status& status);

inline void check(const Status& status) {
  if (!status.is_ok()) raise(status);
}

template <typename T>
T unwrap(Result<T>&& result) {
  if (!result.is_ok()) raise(result.status());
  return std::move(result).value();
}

void init_status(pybind11::module_& m);
void init_index(pybind11::module_& m);
void init_encoder(pybind11::module_& m);
void init_vector_index(pybind11::module_& m);
void init_tokenizer(pybind11::module_& m);
void init_shard(pybind11::module_& m);

}  // namespace medsearch::bindings

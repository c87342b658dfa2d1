// status.h: expected failures as values.
//
// Every fallible call in the core returns a [[nodiscard]] Status or Result<T>;
// exceptions are created only in the Python binding (bindings/status.h) and
// the CLI, which turn a failed Status into a ValueError/OSError or an exit code.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace medsearch {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input from the caller: empty query, wrong shape, bad option
  kNotFound,         // a missing file or directory
  kCorrupt,          // a file that exists but fails parsing, checksums or version checks
  kIoError,          // the operating system refused a read or write
  kInternal,         // a bug: an invariant that should have held did not
  kUnknownId,        // an id the index does not hold (a doc_id to remove, to look up)
  kOldFormat,        // a valid file of an older format version this build does not read: build it again
  kStale,            // a request made for another version of the data (a sharded query planned with
                     // other collection statistics, a passage of a replaced generation): ask again
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status invalid_argument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status unknown_id(std::string m) { return {StatusCode::kUnknownId, std::move(m)}; }
  static Status corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
  static Status old_format(std::string m) { return {StatusCode::kOldFormat, std::move(m)}; }
  static Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status stale(std::string m) { return {StatusCode::kStale, std::move(m)}; }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Result<T>: a value or a failed Status. Accessing value() of a failed result
// is a programming error (checked in debug builds).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}           // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}   // NOLINT: implicit by design

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  // On a temporary, yields the value itself, so `for (auto& x : *f())` is safe.
  T operator*() && { return std::move(*value_); }

 private:
  std::optional<T> value_;
  Status status_;
};

inline std::string Status::to_string() const {
  static constexpr const char* kNames[] = {"OK",      "InvalidArgument", "NotFound", "Corrupt",
                                           "IoError", "Internal",        "UnknownId", "OldFormat", "Stale"};
  if (is_ok()) return "OK";
  return std::string(kNames[static_cast<int>(code_)]) + ": " + message_;
}

}  // namespace medsearch

// Propagates a failed Status from an expression returning Status.
#define MEDSEARCH_RETURN_IF_ERROR(expr)            \
  do {                                             \
    ::medsearch::Status _st = (expr);              \
    if (!_st.is_ok()) return _st;                  \
  } while (0)

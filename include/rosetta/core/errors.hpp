// Typed errors. Every message names the argument, the value it had and what was allowed,
// so a user can act on it without reading the source.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace rosetta {

/// Base of every error rosetta throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Operand shapes do not fit together (gemm dimensions, tensor ranks, views).
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// An index or token id outside its valid range.
class IndexError : public Error {
 public:
  using Error::Error;
};

/// A model / training configuration that violates the contract.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// An argument value outside its allowed range (sampling parameters, sizes, ...).
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A non-finite loss or gradient; raised before any weight is modified.
class NumericalError : public Error {
 public:
  using Error::Error;
};

/// A checkpoint / safetensors file that is malformed or does not match the model.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

/// A backend library that could not be loaded or used.
class BackendError : public Error {
 public:
  using Error::Error;
};

/// A routing table for backend::Auto / atlas::auto_run that is malformed or names something
/// this build does not have; the message starts with "<file>:<line>: ".
class RouteTableError : public Error {
 public:
  using Error::Error;
};

namespace detail {

/// Concatenates the streamable parts into one message.
template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream os;
  os.precision(17);
  (os << ... << std::forward<Parts>(parts));
  return os.str();
}

/// Throws E with the concatenated message.
template <class E, class... Parts>
[[noreturn]] void raise(Parts&&... parts) {
  throw E(concat(std::forward<Parts>(parts)...));
}

}  // namespace detail
}  // namespace rosetta

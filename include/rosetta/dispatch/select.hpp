// Choosing a policy at run time (e.g. from a command-line flag) without writing any code
// twice: visit_policy(scalar, layout, backend, f) calls f.template operator()<P>() with the
// matching Policy<T, L, B> among the backends compiled in. Each call site instantiates f for
// every available policy, so keep f small or use it once per program.
#pragma once

#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "rosetta/backend/all.hpp"
#include "rosetta/core/errors.hpp"
#include "rosetta/core/policy.hpp"

namespace rosetta {

/// Names of the compiled-in backends ("naive", "eigen", "blis", "openblas").
inline std::vector<std::string> available_backends() {
  std::vector<std::string> out;
  std::apply([&](auto... b) { (out.emplace_back(decltype(b)::name), ...); }, backend::Available{});
  return out;
}

namespace detail {
template <class T, class L, class F>
void visit_backend(std::string_view name, F&& f) {
  bool found = false;
  std::apply(
      [&](auto... b) {
        (([&] {
           using Bk = decltype(b);
           if (!found && name == Bk::name) {
             found = true;
             f.template operator()<Policy<T, L, Bk>>();
           }
         }()),
         ...);
      },
      backend::Available{});
  if (!found) {
    std::string all;
    for (const auto& n : available_backends()) all += (all.empty() ? "" : ", ") + n;
    raise<ValueError>("backend '", name, "' is not available (compiled in: ", all, ")");
  }
}
template <class T, class F>
void visit_layout(std::string_view layout, std::string_view backend, F&& f) {
  if (layout == "row")
    visit_backend<T, RowMajor>(backend, f);
  else if (layout == "col")
    visit_backend<T, ColMajor>(backend, f);
  else
    raise<ValueError>("layout '", layout, "' is not one of: row, col");
}
}  // namespace detail

template <class F>
void visit_policy(std::string_view scalar, std::string_view layout, std::string_view backend,
                  F&& f) {
  if (scalar == "float")
    detail::visit_layout<float>(layout, backend, f);
  else if (scalar == "double")
    detail::visit_layout<double>(layout, backend, f);
  else
    detail::raise<ValueError>("scalar '", scalar, "' is not one of: float, double");
}

/// The fastest backend compiled in, by this project's measurements (docs/bench-results.md:
/// on the AVX-512 machines here Eigen wins every model scenario and the 64^3 matmul, then
/// OpenBLAS; Debian's BLIS 0.9 runs its generic kernels on these CPUs).
inline std::string default_backend() {
  const auto b = available_backends();
  for (const char* pref : {"eigen", "openblas", "blis"})
    for (const auto& n : b)
      if (n == pref) return n;
  return "naive";
}

}  // namespace rosetta

// The generated policy list for typed tests: every (scalar, layout, backend) combination of
// the backends compiled into this build, as ::testing::Types<Policy<...>...>.
#pragma once

#include <gtest/gtest.h>

#include <rosetta/rosetta.hpp>
#include <string>
#include <tuple>

namespace rosetta::test {

template <class... Ts>
struct List {};

template <class A, class B>
struct Concat;
template <class... A, class... B>
struct Concat<List<A...>, List<B...>> {
  using type = List<A..., B...>;
};

/// Policies for one backend: scalars x layouts.
template <class B>
using PoliciesFor = List<Policy<float, RowMajor, B>, Policy<float, ColMajor, B>,
                         Policy<double, RowMajor, B>, Policy<double, ColMajor, B>>;

template <class Tuple>
struct AllPolicies;
template <>
struct AllPolicies<std::tuple<>> {
  using type = List<>;
};
template <class B, class... Bs>
struct AllPolicies<std::tuple<B, Bs...>> {
  using type = typename Concat<PoliciesFor<B>, typename AllPolicies<std::tuple<Bs...>>::type>::type;
};

template <class L>
struct ToGTest;
template <class... Ts>
struct ToGTest<List<Ts...>> {
  using type = ::testing::Types<Ts...>;
};

/// Every policy of every available backend.
using Policies = ToGTest<AllPolicies<backend::Available>::type>::type;

/// Typed-test names read "float_row_blis" instead of "3".
struct PolicyName {
  template <class P>
  static std::string GetName(int) {
    std::string s = P::name();
    for (char& c : s)
      if (c == '/') c = '_';
    return s;
  }
};

/// Relative tolerance for comparing a backend against the naive reference.
template <class T>
constexpr T parity_tol() {
  return std::is_same_v<T, float> ? T(2e-5) : T(1e-12);
}

}  // namespace rosetta::test

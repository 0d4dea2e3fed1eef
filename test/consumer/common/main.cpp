// Tiny consumer of the rosetta package, shared by test/consumer/find_package and
// test/consumer/add_subdirectory. Builds against the public API only.
#include <cstdio>
#include <rosetta/rosetta.hpp>
int main() {
  using namespace rosetta;
  Tensor<float, RowMajor> a({2, 3}), b({3, 2}), c({2, 2});
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = float(i + 1);
  for (std::size_t i = 0; i < b.size(); ++i) b.data()[i] = float(i + 1);
  backend::Naive::gemm(Op::N, Op::N, 1.0f, a.matrix(), b.matrix(), 0.0f, c.matrix());
  std::printf("%g %g %g %g\n", c(0, 0), c(0, 1), c(1, 0), c(1, 1));
  return (c(0, 0) == 22.0f && c(1, 1) == 64.0f) ? 0 : 1;
}

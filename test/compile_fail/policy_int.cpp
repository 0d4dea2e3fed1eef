// compile_fail_policy_int: int as the scalar type MUST NOT compile.
// CMakeLists.txt names the text the diagnostics must contain.
#include <rosetta/rosetta.hpp>

rosetta::Policy<int, rosetta::RowMajor, rosetta::backend::Naive> p;

int main() {
  return 0;
}

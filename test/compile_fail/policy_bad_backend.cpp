// compile_fail_policy_bad_backend: int as the backend MUST NOT compile.
// CMakeLists.txt names the text the diagnostics must contain.
#include <rosetta/rosetta.hpp>

rosetta::Policy<float, rosetta::RowMajor, int> p;

int main() {
  return 0;
}

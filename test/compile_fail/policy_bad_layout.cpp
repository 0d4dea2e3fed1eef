// compile_fail_policy_bad_layout: int as the layout MUST NOT compile.
// CMakeLists.txt names the text the diagnostics must contain.
#include <rosetta/rosetta.hpp>

rosetta::Policy<float, int, rosetta::backend::Naive> p;

int main() {
  return 0;
}

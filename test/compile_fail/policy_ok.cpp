// compile_fail_policy_ok: positive control, MUST compile with the very same command line
// as the negative tests, so a broken include path cannot make them pass vacuously.
#include <rosetta/rosetta.hpp>

rosetta::Policy<float, rosetta::RowMajor, rosetta::backend::Naive> p;

int main() {
  return 0;
}

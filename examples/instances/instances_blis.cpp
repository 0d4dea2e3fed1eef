// Explicit instantiation of Transformer and Trainer for the Blis backend's four policies.
#define ROSETTA_INSTANTIATE_BACKEND_BLIS
#include <rosetta/rosetta.hpp>

ROSETTA_INSTANCES_FOR(template, rosetta::backend::Blis)

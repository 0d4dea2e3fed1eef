// Explicit instantiation of Transformer and Trainer for the Naive backend's four policies.
#define ROSETTA_INSTANTIATE_BACKEND_NAIVE
#include <rosetta/rosetta.hpp>

ROSETTA_INSTANCES_FOR(template, rosetta::backend::Naive)

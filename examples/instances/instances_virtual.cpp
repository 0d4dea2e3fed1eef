// Explicit instantiation of VirtualTransformer and VirtualTrainer (the virtual twin) for
// every scalar x layout.
#define ROSETTA_INSTANTIATE_VIRTUAL
#include <rosetta/rosetta.hpp>

ROSETTA_VIRTUAL_INSTANCES(template)

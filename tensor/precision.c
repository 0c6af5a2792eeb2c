/* precision.c - the symbol that says which ur_real this library was built with.
 * ur_tensor.h makes every program refer to the symbol of its own setting of
 * UR_DOUBLE, so a float program does not link against the double library, nor the
 * reverse (the mix-up would otherwise build and compute garbage). */
#include "ur_tensor.h"

#ifdef UR_DOUBLE
const int ur_library_built_with_UR_DOUBLE = 1;
#else
const int ur_library_built_without_UR_DOUBLE = 1;
#endif

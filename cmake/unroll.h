/* unroll/unroll.h - the header to include from an installed unroll:
 *     #include <unroll/unroll.h>
 * It forwards to the umbrella header, installed with the source layout beside it. */
#include "nn/unroll.h"

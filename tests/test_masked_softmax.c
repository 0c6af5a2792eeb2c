/* ur_masked_softmax in the default (float) build gives exactly the weights that
 * attention computed before it had the op: softmax(x + bias) * mask with a bias of
 * -1e9 at masked entries. Attention now uses the op, and its numbers must not move. */
#include <criterion/criterion.h>
#include <math.h>

#include "unroll.h"

Test(masked_softmax, equals_the_biased_softmax_bit_for_bit) {
    enum { R = 5, C = 37 }; /* rows longer than one vector, with a tail */
    ur_real x[R * C], m[R * C], bias[R * C];
    ur_rng rng;
    ur_rng_seed(&rng, 7);
    for (int i = 0; i < R * C; i++) {
        x[i] = (ur_real)(4 * ur_rng_normal(&rng));
        int r = i / C, c = i % C;
        /* row 0 all kept, row 1 every third, row 2 none, row 3 one, row 4 the tail only */
        int keep = r == 0 || (r == 1 && c % 3 == 0) || (r == 3 && c == 5) || (r == 4 && c >= 32);
        m[i] = keep;
        bias[i] = keep ? 0 : (ur_real)-1e9;
    }
    ur_tape *t = ur_tape_new();
    int d[2] = {R, C};
    ur_node *xs = ur_input_data(t, 2, d, x), *mn = ur_input_data(t, 2, d, m), *bn = ur_input_data(t, 2, d, bias);
    ur_node *y = ur_masked_softmax(t, xs, mn);
    ur_node *old = ur_mul(t, ur_softmax(t, ur_add(t, xs, bn)), mn);
    cr_assert(y && old, "%s", ur_tape_errmsg(t));
    for (int i = 0; i < R * C; i++)
        cr_expect_eq(ur_node_data(y)[i], ur_node_data(old)[i], "element %d: %.9g vs %.9g", i, ur_node_data(y)[i],
                     ur_node_data(old)[i]);
    double row3 = 0;
    for (int c = 0; c < C; c++) row3 += ur_node_data(y)[3 * C + c];
    cr_expect_eq(row3, 1, "one kept entry gets probability 1");
    ur_tape_free(t);
}

/* app.c - a program outside the unroll tree, built against it by tests/consumer.sh
 * in each way docs/using.md describes. It differentiates loss = sum(x * x) at
 * x = (1, 2, 3): the gradient is 2x = (2, 4, 6). */
#include <stdio.h>

#include <unroll/unroll.h>

int main(void) {
    ur_tensor *x = ur_tensor_new_1d(3);
    ur_tape *t = ur_tape_new();
    int rc = 1;
    if (!x || !t) goto done;
    for (int i = 0; i < 3; i++) x->data[i] = (ur_real)(i + 1);
    ur_node *v = ur_variable(t, x);
    ur_node *loss = ur_sum(t, ur_mul(t, v, v));
    if (ur_backward(t, loss) != UR_OK) {
        fprintf(stderr, "app: %s\n", ur_last_error());
        goto done;
    }
    const ur_real *g = ur_node_grad(v);
    printf("unroll %s, %s: loss %g, gradient %g %g %g\n", UR_VERSION,
           sizeof(ur_real) == sizeof(double) ? "double" : "float", (double)ur_node_item(loss),
           (double)g[0], (double)g[1], (double)g[2]);
    rc = 0;
done:
    ur_tape_free(t);
    ur_tensor_free(x);
    return rc;
}

/* ur_init.h - initializing parameter values.
 *
 * Every helper fills a tensor; for a parameter pass &param->value. Weight matrices
 * are 2-d (in, out): x (N, in) times W (in, out), so fan_in = in and fan_out = out.
 * Random draws come from the given ur_rng, so the same seed gives the same values.
 */
#ifndef UR_INIT_H
#define UR_INIT_H

#include "../autograd/ur_tape.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every element uniform in [-a, a). */
ur_status ur_init_uniform(ur_tensor *t, ur_rng *r, double a);
/* Every element normal with the given mean and standard deviation. */
ur_status ur_init_normal(ur_tensor *t, ur_rng *r, double mean, double std);
/* Xavier/Glorot uniform for a 2-d (in, out) tensor: U(-a, a), a = gain * sqrt(6 / (in + out)). */
ur_status ur_init_xavier_uniform(ur_tensor *t, ur_rng *r, double gain);
/* Xavier/Glorot normal for a 2-d (in, out) tensor: N(0, std^2), std = gain * sqrt(2 / (in + out)). */
ur_status ur_init_xavier_normal(ur_tensor *t, ur_rng *r, double gain);
/* Orthogonal for a 2-d (in, out) tensor, times gain. blocks = k > 1 treats the
 * columns as k gate blocks of width out / k (e.g. (H, 4H) of an LSTM) and makes
 * each (in, out/k) block orthogonal on its own. A block with in >= width gets
 * orthonormal columns (W^T W = gain^2 I), otherwise orthonormal rows. Computed in
 * double from a Gaussian matrix by Householder QR with the signs of R's diagonal
 * folded in (so the result is uniformly distributed). */
ur_status ur_init_orthogonal(ur_tensor *t, ur_rng *r, double gain, int blocks);
/* scale times the identity for a 2-d tensor (ones on the main diagonal when not
 * square): the IRNN recurrent initialization. */
ur_status ur_init_identity(ur_tensor *t, double scale);
/* Every element = v. */
ur_status ur_init_constant(ur_tensor *t, double v);
/* Sets the forget-gate slice [H, 2H) of an LSTM bias with 4H elements (gate order
 * i, f, g, o) to value; the other gates are left as they are. */
ur_status ur_init_forget_bias(ur_param *p, int H, double value);

#ifdef __cplusplus
}
#endif
#endif

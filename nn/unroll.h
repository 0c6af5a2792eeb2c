/* unroll.h - the one header to include: tensors, kernels, the tape and ops, and
 * the neural-network layer built from them. */
#ifndef UNROLL_H
#define UNROLL_H

#define UR_VERSION "0.1.0"

#include "../tensor/ur_tensor.h"
#include "../tensor/ur_kernels.h"
#include "../autograd/ur_tape.h"
#include "../autograd/ur_ops.h"
#include "../autograd/ur_expr.h"
#include "data/ur_data.h"
#include "data/ur_bio.h"
#include "data/ur_shard.h"
#include "ur_init.h"
#include "ur_optim.h"
#include "io/ur_checkpoint.h"
#include "ur_tree.h"
#include "ur_attention.h"
#include "ur_seq2seq.h"
#include "ur_cell.h"
#include "ur_rnn.h"
#include "ur_crf.h"
#include "ur_ngram.h"
#include "ur_dist.h"

#endif

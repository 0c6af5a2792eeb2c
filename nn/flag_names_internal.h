/* flag_names_internal.h - enum values from their names, for the example programs'
 * flags (--score dot, --attn-mode feed, --model treelstm); not part of the public
 * API. Each is the reverse of the public ..._name function and gives UR_ERR_ARG,
 * naming the accepted names, for any other string.
 */
#ifndef UR_FLAG_NAMES_INTERNAL_H
#define UR_FLAG_NAMES_INTERNAL_H

#include "ur_attention.h"
#include "ur_seq2seq.h"
#include "ur_tree.h"

/* "dot", "general", "additive". */
ur_status ur_attn_score_parse(const char *name, ur_attn_score *out);
/* "output", "feed", "input". */
ur_status ur_s2s_attn_mode_parse(const char *name, ur_s2s_attn_mode *out);
/* "rnn", "treelstm", "childsum". */
ur_status ur_tree_cell_parse(const char *name, ur_tree_cell *out);

#endif

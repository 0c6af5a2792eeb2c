/* print.c - the tape as text (one line per node) and as a Graphviz DOT graph. */
#include "tape_internal.h"

#include <string.h>

static const char *node_kind(const ur_node *n) {
    if (n->param) return "param";
    if (n->op != UR_OP_LEAF) return "op";
    return n->requires_grad ? "variable" : "input";
}

ur_status ur_tape_print(const ur_tape *t, FILE *out) {
    if (!t || !out) return ur_set_error(UR_ERR_ARG, "ur_tape_print: tape or file is NULL");
    char buf[64];
    for (int i = 0; i < t->n_nodes; i++) {
        const ur_node *n = t->nodes[i];
        fprintf(out, "%4d  %-13s %-16s", n->id, n->op == UR_OP_LEAF ? node_kind(n) : ur_op_name(n->op),
                ur_shape_str(&n->shape, buf, sizeof buf));
        if (n->n_in) {
            fprintf(out, " <-");
            for (int j = 0; j < n->n_in; j++) fprintf(out, " %d", n->in[j]->id);
        }
        if (n->label) fprintf(out, "  [%s]", n->label);
        if (n->group >= 0) fprintf(out, "  {%s}", t->groups[n->group].label);
        fputc('\n', out);
    }
    return ferror(out) ? ur_set_error(UR_ERR_IO, "ur_tape_print: write failed") : UR_OK;
}

static void dot_escape(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', out);
        fputc(*s, out);
    }
}

static void dot_node(const ur_tape *t, const ur_node *n, FILE *out, const char *indent) {
    char buf[64];
    ur_shape_str(&n->shape, buf, sizeof buf);
    fprintf(out, "%sn%d [label=\"", indent, n->id);
    if (n->param) {
        dot_escape(out, n->param->name);
        fprintf(out, "\\n%s\", shape=box, style=\"filled,rounded\", fillcolor=\"#f6d7a7\"];\n", buf);
    } else if (n->op == UR_OP_LEAF) {
        dot_escape(out, n->label ? n->label : node_kind(n));
        fprintf(out, "\\n%s\", shape=box, style=filled, fillcolor=\"#d5e8f7\"];\n", buf);
    } else {
        fprintf(out, "%s", ur_op_name(n->op));
        if (n->label) {
            fputs(" ", out);
            dot_escape(out, n->label);
        }
        fprintf(out, "\\n%s\", shape=ellipse];\n", buf);
    }
    (void)t;
}

/* Writes the nodes of group g (and, nested, of its subgroups) as a cluster. */
static void dot_group(const ur_tape *t, int g, FILE *out, int depth) {
    char indent[24];
    memset(indent, ' ', sizeof indent);
    indent[depth * 2 < 22 ? depth * 2 : 22] = '\0';
    if (g >= 0) {
        fprintf(out, "%ssubgraph cluster_%d {\n%s  label=\"", indent, g, indent);
        dot_escape(out, t->groups[g].label);
        fprintf(out, "\"; style=dashed; color=\"#888888\";\n");
    }
    for (int i = 0; i < t->n_nodes; i++)
        if (t->nodes[i]->group == g && !t->nodes[i]->param) dot_node(t, t->nodes[i], out, indent);
    for (int h = 0; h < t->n_groups; h++)
        if (t->groups[h].parent == g) dot_group(t, h, out, depth + 1);
    if (g >= 0) fprintf(out, "%s}\n", indent);
}

ur_status ur_tape_dot(const ur_tape *t, FILE *out) {
    if (!t || !out) return ur_set_error(UR_ERR_ARG, "ur_tape_dot: tape or file is NULL");
    fprintf(out, "digraph tape {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n");
    /* parameters stand outside every cluster: one node, an edge to each use */
    for (int i = 0; i < t->n_nodes; i++)
        if (t->nodes[i]->param) dot_node(t, t->nodes[i], out, "  ");
    dot_group(t, -1, out, 1);
    for (int i = 0; i < t->n_nodes; i++) {
        const ur_node *n = t->nodes[i];
        for (int j = 0; j < n->n_in; j++) fprintf(out, "  n%d -> n%d;\n", n->in[j]->id, n->id);
    }
    fprintf(out, "}\n");
    return ferror(out) ? ur_set_error(UR_ERR_IO, "ur_tape_dot: write failed") : UR_OK;
}

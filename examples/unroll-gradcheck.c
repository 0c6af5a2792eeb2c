/* unroll-gradcheck - checks the derivative of every op in the op table.
 *
 * For each gradient-check case (at least one per op kind) it compares the gradient
 * that backward computes with central differences, in double precision, and prints
 * one row: case, op, max abs error, max rel error, PASS/FAIL. Exits 1 on any failure
 * and also when an op kind has no case at all. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "unroll.h"

int main(int argc, char **argv) {
    double eps = 1e-6, tol = 1e-6;
    int json = 0;
    const char *only = NULL;
    cli_opt opts[] = {
        CLI_REAL("--eps", &eps, 1e-12, 1, "finite-difference step (default 1e-6)"),
        CLI_REAL("--tol", &tol, 0, 1, "largest relative error that passes (default 1e-6)"),
        CLI_TEXT("--only", &only, "run only cases whose name starts with TEXT"),
        CLI_BOOL("--json", &json, "print the summary as one JSON line"),
    };
    int r = cli_parse(argc, argv, "unroll-gradcheck: every op's backward against central differences (double precision)",
                      opts, 4);
    if (r) return r > 0 ? 0 : 2;
#ifndef UR_DOUBLE
    fprintf(stderr, "unroll-gradcheck: built in single precision; link it with unroll_f64\n");
    return 2;
#endif
    int covered[UR_OP_COUNT] = {0}, failed = 0, run = 0;
    printf("%-28s %-14s %12s %12s  %s\n", "case", "op", "max abs err", "max rel err", "result");
    for (int i = 0; i < ur_op_case_count(); i++) {
        const char *name = ur_op_case_name(i);
        ur_op op = ur_op_case_op(i);
        covered[op] = 1;
        if (only && strncmp(name, only, strlen(only)) != 0) continue;
        ur_gradcheck_result res;
        ur_status st = ur_op_case_run(i, eps, &res);
        int pass = st == UR_OK && res.max_rel_err <= tol;
        failed += !pass;
        run++;
        if (st != UR_OK) printf("%-28s %-14s %12s %12s  FAIL (%s)\n", name, ur_op_name(op), "-", "-", ur_last_error());
        else
            printf("%-28s %-14s %12.3e %12.3e  %s\n", name, ur_op_name(op), res.max_abs_err, res.max_rel_err,
                   pass ? "PASS" : "FAIL");
    }
    for (int op = 1; op < UR_OP_COUNT && !only; op++)
        if (!covered[op]) {
            printf("%-28s %-14s %12s %12s  FAIL (no gradient-check case)\n", "-", ur_op_name((ur_op)op), "-", "-");
            failed++;
        }
    printf("%d cases, %d passed, %d failed\n", run, run - failed, failed);
    if (json) printf("{\"cases\": %d, \"passed\": %d, \"failed\": %d}\n", run, run - failed, failed);
    return failed ? 1 : 0;
}

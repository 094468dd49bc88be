/* test_plots.c -- the Python side: run.h5 read while a run writes it (tests/plots/live_read.py) and every
 * figure script on the committed fixtures (tests/plots/check_figures.py). Skipped, with a message, when no
 * Python 3 with h5py, numpy and matplotlib is found (`make deps` installs them; RWKVLAB_PYTHON picks one).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "testutil.h"

/* RWKVLAB_PYTHON, else the first of python3, /usr/bin/python3 that imports the three packages; NULL if none */
static const char *find_python(void) {
    static char py[512];
    static int done = 0;
    if (done) return py[0] ? py : NULL;
    done = 1;
    const char *cand[] = {getenv("RWKVLAB_PYTHON"), "python3", "/usr/bin/python3"};
    for (int i = 0; i < 3; i++) {
        if (!cand[i] || !cand[i][0]) continue;
        char cmd[700];
        snprintf(cmd, sizeof cmd, "%s -c 'import h5py, numpy, matplotlib' >/dev/null 2>&1", cand[i]);
        if (sh(cmd) == 0) {
            snprintf(py, sizeof py, "%s", cand[i]);
            return py;
        }
    }
    return NULL;
}

static char tmpdir[256];
static void mk_tmp(void) { cr_assert_eq(test_mkdtemp(tmpdir, sizeof tmpdir, "plots"), 0); }
static void rm_tmp(void) { test_rmtree(tmpdir); }

TestSuite(plots, .init = mk_tmp, .fini = rm_tmp, .timeout = 600);

/* run `PY tests/plots/SCRIPT ARGS` with its output in tmpdir/SCRIPT.log; exit status; the log is shown on failure */
static int run_py(const char *script, const char *args) {
    const char *py = find_python();
    if (!py) cr_skip_test("no python3 with h5py, numpy and matplotlib (run `make deps`, or set RWKVLAB_PYTHON)");
    char cmd[2048], log[512];
    snprintf(log, sizeof log, "%s/%s.log", tmpdir, script);
    snprintf(cmd, sizeof cmd, "%s tests/plots/%s %s > '%s' 2>&1", py, script, args, log);
    int rc = sh(cmd);
    size_t n = 0;
    char *out = test_slurp(log, &n);
    if (rc != 0) cr_log_error("%s exited %d:\n%s", script, rc, out ? out : "(no output)");
    else if (out && n) cr_log_info("%s", out);
    free(out);
    return rc;
}

Test(plots, read_while_a_run_writes) {
    char args[700];
    snprintf(args, sizeof args, "'%s' '%s/live'", rwkvlab_bin(), tmpdir);
    cr_assert_eq(run_py("live_read.py", args), 0);
}

Test(plots, every_script_on_the_fixtures) {
    char args[600];
    snprintf(args, sizeof args, "'%s/check'", tmpdir);
    cr_assert_eq(run_py("check_figures.py", args), 0);
}

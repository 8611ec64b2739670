#!/usr/bin/env bash
# Self-test for scripts/lint: builds small throwaway trees that mirror the
# repository layout (src/, src/core/, tests/unit/), runs the linter on each
# and checks that it reports exactly the expected FILE:LINE violations and
# accepts clean code. Prints "lint-selftest: N passed, M failed".
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
lint=$repo/scripts/lint

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
n=0

# case_ NAME PATH EXPECTED [fmt] < content
#   Writes stdin to PATH in a fresh tree and runs lint --no-format on it, or
#   plain lint (with the clang-format check) if "fmt" is given. EXPECTED is
#   "ok" for a clean pass, or a space-separated list of LINE numbers that
#   must be reported for PATH, and nothing else.
case_() {
    local name=$1 path=$2 expected=$3
    local args=(--no-format)
    [ "${4:-}" = fmt ] && args=()
    n=$((n + 1))
    local root=$tmp/t$n
    mkdir -p "$root/src/core" "$root/src/api" "$root/tests/unit/api"
    mkdir -p "$(dirname "$root/$path")"
    cat >"$root/$path"
    [ -f "$root/.clang-format" ] || cp "$repo/.clang-format" "$root/.clang-format"
    local out rc=0
    out=$("$lint" ${args[@]+"${args[@]}"} "$root" 2>&1) || rc=$?
    local ok=1 why=
    if [ "$expected" = ok ]; then
        if [ $rc -ne 0 ] || ! grep -qx 'lint: ok (1 files)' <<<"$out"; then
            ok=0
            why="expected a clean pass"
        fi
    else
        local got want
        got=$(sed -n "s|^${path}:\([0-9]*\):.*|\1|p" <<<"$out" | sort -n | uniq | tr '\n' ' ')
        want=$(tr ' ' '\n' <<<"$expected" | sort -n | uniq | tr '\n' ' ')
        if [ $rc -eq 0 ]; then
            ok=0
            why="expected failure, lint exited 0"
        elif [ "$got" != "$want" ]; then
            ok=0
            why="expected lines [$want], got [$got]"
        elif grep -v "^${path}:" <<<"$out" | grep -qv '^lint: failed$'; then
            ok=0
            why="unexpected output"
        fi
    fi
    if [ $ok -eq 1 ]; then
        passed=$((passed + 1))
        echo "ok   $n $name"
    else
        failed=$((failed + 1))
        echo "FAIL $n $name: $why"
        sed 's/^/     | /' <<<"$out"
    fi
}

case_ "banned calls are reported" src/api/a.c "3 4 5 6 7 8 9 10 11 12" <<'EOF'
void f(char *d, const char *s, char *b, FILE *fp)
{
    strcpy(d, s);
    strcat(d, s);
    sprintf(d, "%s", s);
    vsprintf(d, s, ap);
    strtok(d, ",");
    strtok_r(d, ",", &b);
    int a = atoi(s); long l = atol(s);
    gets(b);
    x = (int)atoi (s);
    if (n>atoi(s)) return;
}
EOF

case_ "safe look-alikes pass" src/api/a.c ok <<'EOF'
void f(char *d, const char *s, char *b, FILE *fp)
{
    snprintf(d, 4, "%s", s);
    vsnprintf(d, 4, s, ap);
    fgets(b, 4, fp);
    my_atoi(s);
    strcpy_safe(d, s);
    x.atoi(s);
    p->strcpy(d, s);
    p -> sprintf(d);
    int strcat = 1;
}
EOF

case_ "comments and literals are ignored" src/api/a.c ok <<'EOF'
/* strcpy(d, s);
 * sprintf(d, s);
 */
// atoi(s);
void f(void)
{
    puts("strcat(a, b)"); /* atol(x) */ // gets(b)
    puts("a \" atoi(s) \" b");
    char c = '"'; char q = '\''; puts("x"); /* free(p); */
}
EOF

case_ "code around comments and literals is checked" src/api/a.c "2 4 5" <<'EOF'
/* a comment
 */ int v = atoi(s);
char c = '"';
int w = atoi(t); puts("strcpy(");
/* x */ strcat(a, b); /* y */
EOF

case_ "raw allocation outside src/core/ is reported" src/api/a.c "3 4 5 6" <<'EOF'
void f(void)
{
    void *p = malloc(3);
    p = calloc(1, 2);
    p = realloc(p, 8);
    free (p);
}
EOF

case_ "wrappers and *_free() pass outside src/core/" src/api/a.c ok <<'EOF'
void f(void)
{
    void *p = xmalloc(3);
    p = xcalloc(1, 2);
    p = xrealloc(p, 8);
    xfree(p);
    db_free(db); sqlite3_free(m); PQfreemem(s); PQclear(r); json_decref(j);
    ops->free(p); a.malloc(3);
}
EOF

case_ "raw allocation is allowed in src/core/" src/core/alloc.c ok <<'EOF'
void *loci__xmalloc(size_t n)
{
    void *p = malloc(n);
    p = realloc(p, n);
    free(p);
    return calloc(1, n);
}
EOF

case_ "src/core/ still bans unsafe calls" src/core/alloc.c "3" <<'EOF'
void f(char *d, const char *s)
{
    strcpy(d, s);
}
EOF

case_ "headers are checked" src/api/a.h "1" <<'EOF'
static inline void g(char *d) { sprintf(d, "x"); }
EOF

case_ "tests/unit: banned calls reported" tests/unit/api/test_a.c "3" <<'EOF'
void t(void)
{
    int n = atoi("3");
}
EOF

case_ "tests/unit: raw allocation allowed" tests/unit/api/test_a.c ok <<'EOF'
void t(void)
{
    void *p = malloc(3);
    free(p);
}
EOF

case_ "nested src/ directories are checked" src/api/v1/deep.c "1" <<'EOF'
int f(const char *s) { return atoi(s); }
EOF

n=$((n + 1))
mkdir -p "$tmp/t$n"
if out=$("$lint" "$tmp/t$n" 2>&1) && [ "$out" = "lint: ok (0 files)" ]; then
    passed=$((passed + 1))
    echo "ok   $n empty tree passes"
else
    failed=$((failed + 1))
    echo "FAIL $n empty tree passes: $out"
fi

if command -v clang-format >/dev/null 2>&1; then
    case_ "format: clean file passes" src/api/a.c ok fmt <<'EOF'
#include <stdio.h>

#define SHORT      1
#define LONGER_ONE 2

static int f(int x, const char *p)
{
    if (x)
        return 1;
    switch (x) {
    case 1:
        return (int)*p;
    default:
        break;
    }
    return 0;
}
EOF

    # clang-format reports where each replacement starts: the brace on line
    # 1 and the whitespace run that ends line 2.
    case_ "format: misformatted lines are reported" src/api/a.c "1 2" fmt <<'EOF'
static int f(int x) {
    if (x)
      return 1;
    return 0;
}
EOF

    case_ "format: --no-format skips the check" src/api/a.c ok <<'EOF'
static int f(int x) { return x; }
EOF
else
    echo "skip format cases: clang-format not installed"
fi

echo "lint-selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

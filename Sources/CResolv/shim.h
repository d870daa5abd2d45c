// The system resolver (glibc's libresolv, configured by /etc/resolv.conf) for the agent's domain routes: one query
// with a private resolver state (thread-safe), so the answer's TTLs can be read (getaddrinfo does not give them).
#include <string.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <resolv.h>
#include <netdb.h>

/// Sends one query (class IN, `type` 1 = A, 28 = AAAA) for `name`. Returns the answer's length, or -1 with
/// `*herr` = HOST_NOT_FOUND (1), TRY_AGAIN (2), NO_RECOVERY (3) or NO_DATA (4); -2 when the resolver could not start.
static inline int routeplane_res_query(const char *name, int type, unsigned char *answer, int length, int *herr) {
    struct __res_state state;
    memset(&state, 0, sizeof state);
    if (res_ninit(&state) != 0) { *herr = NO_RECOVERY; return -2; }
    int n = res_nquery(&state, name, ns_c_in, type, answer, length);
    *herr = state.res_h_errno;
    res_nclose(&state);
    return n;
}

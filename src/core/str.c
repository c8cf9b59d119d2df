#include "core/str.h"

bool ldg_str_has_token(struct ldg_str v, const char *token)
{
    size_t tn = strlen(token), i = 0;
    while (i < v.n) {
        while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.n && v.p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
            e--;
        if (e - s == tn && strncasecmp(v.p + s, token, tn) == 0)
            return true;
    }
    return false;
}

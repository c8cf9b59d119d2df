/*
 * prefs.c: see prefs.h.
 */
#include "notify/prefs.h"

#include <strings.h>

#include "core/alloc.h"
#include "core/json.h"

void ldg_prefs_init(struct ldg_prefs *p)
{
    memset(p, 0, sizeof *p);
    p->enabled = true;
}

void ldg_prefs_free(struct ldg_prefs *p)
{
    for (size_t i = 0; i < p->nprojects; i++) {
        struct ldg_prefs_project *pp = &p->projects[i];
        for (size_t k = 0; k < pp->nlevels; k++)
            free(pp->levels[k]);
        for (size_t k = 0; k < pp->ntypes; k++)
            free(pp->types[k]);
        free(pp->levels);
        free(pp->types);
    }
    free(p->projects);
    ldg_prefs_init(p);
}

static bool bool_or_true(const cJSON *v)
{
    return !cJSON_IsBool(v) || cJSON_IsTrue(v);
}

/* A project key: plain decimal digits, positive, no leading zero. */
static bool key_id(const char *s, int64_t *out)
{
    if (!s || !*s || *s == '0' || strlen(s) > 18)
        return false;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

static char **strings_of(const cJSON *arr, size_t *n)
{
    *n = 0;
    if (!cJSON_IsArray(arr))
        return NULL;
    size_t cap = (size_t)cJSON_GetArraySize(arr);
    if (!cap)
        return NULL;
    char **out = ldg_calloc(cap, sizeof *out);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it))
            out[(*n)++] = ldg_strdup(it->valuestring);
    }
    return out;
}

int ldg_prefs_parse(struct ldg_prefs *p, const char *json, size_t n)
{
    ldg_prefs_free(p);
    cJSON *root = json ? ldg_json_parse(json, n) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return -EINVAL;
    }
    p->enabled = bool_or_true(ldg_json_member(root, "enabled"));
    const cJSON *projects = ldg_json_member(root, "projects");
    if (cJSON_IsObject(projects)) {
        size_t cap = (size_t)cJSON_GetArraySize(projects);
        p->projects = cap ? ldg_calloc(cap, sizeof *p->projects) : NULL;
        const cJSON *e;
        cJSON_ArrayForEach(e, projects)
        {
            int64_t id;
            if (!cJSON_IsObject(e) || !key_id(e->string, &id))
                continue;
            struct ldg_prefs_project *pp = &p->projects[p->nprojects++];
            pp->id = id;
            pp->enabled = bool_or_true(ldg_json_member(e, "enabled"));
            pp->levels = strings_of(ldg_json_member(e, "levels"), &pp->nlevels);
            pp->types = strings_of(ldg_json_member(e, "types"), &pp->ntypes);
        }
    }
    cJSON_Delete(root);
    return 0;
}

bool ldg_prefs_allow(const struct ldg_prefs *p, int64_t project_id, const char *level, size_t level_len,
                     const char *type, size_t type_len)
{
    if (!p->enabled)
        return false;
    const struct ldg_prefs_project *pp = NULL;
    for (size_t i = 0; i < p->nprojects && !pp; i++)
        if (p->projects[i].id == project_id)
            pp = &p->projects[i];
    if (!pp)
        return true;
    if (!pp->enabled)
        return false;
    if (!level)
        return true; /* not about one log (a regression): the lists do not apply */
    if (pp->nlevels) {
        bool found = false;
        for (size_t i = 0; i < pp->nlevels && !found; i++)
            found = strlen(pp->levels[i]) == level_len && strncasecmp(pp->levels[i], level, level_len) == 0;
        if (!found)
            return false;
    }
    if (pp->ntypes) {
        bool found = false;
        for (size_t i = 0; i < pp->ntypes && !found; i++)
            found = strlen(pp->types[i]) == type_len && memcmp(pp->types[i], type, type_len) == 0;
        if (!found)
            return false;
    }
    return true;
}

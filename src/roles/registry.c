/*
 * registry.c: every compiled-in role, in start order (stop order is the reverse).
 *
 * gateway first (it owns the public edge), then the services it dispatches to, then the
 * background roles. Roles whose product code has not landed yet are registered with their
 * section and no hooks, so `[roles]` and their sections already parse and validate.
 */
#include "roles/role.h"
#include "roles/auth/auth.h"

#define PLACEHOLDER_ROLE(ident, section)                                                                     \
    static const struct ldg_cfg_key ident##_keys[] = {{0}};                                                  \
    static const struct ldg_role ident = {.name = section, .keys = ident##_keys, .cfg_size = 0}

#include "roles/gateway/gateway.h"
#include "roles/ingest/ingest.h"
#include "roles/query/query.h"
#include "roles/storage/storage.h"
PLACEHOLDER_ROLE(role_analytics, "analytics");

const struct ldg_role *const ldg_roles[] = {
    &ldg_role_gateway, &ldg_role_auth, &ldg_role_ingest, &ldg_role_query, &ldg_role_storage, &role_analytics,
};
const size_t ldg_roles_count = LDG_ARRAY_SIZE(ldg_roles);

int ldg_role_index(const char *name)
{
    for (size_t i = 0; i < ldg_roles_count; i++)
        if (strcmp(ldg_roles[i]->name, name) == 0)
            return (int)i;
    return -1;
}

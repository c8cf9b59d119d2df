/*
 * registry.c: every compiled-in role, in start order (stop order is the reverse).
 *
 * gateway first (it owns the public edge), then the services it dispatches to, then the
 * background roles.
 */
#include "roles/role.h"
#include "roles/auth/auth.h"

#include "roles/gateway/gateway.h"
#include "roles/ingest/ingest.h"
#include "roles/notify/notify.h"
#include "roles/query/query.h"
#include "roles/analytics/analytics.h"
#include "roles/storage/storage.h"

const struct ldg_role *const ldg_roles[] = {
    &ldg_role_gateway, &ldg_role_auth,    &ldg_role_ingest,    &ldg_role_notify,
    &ldg_role_query,   &ldg_role_storage, &ldg_role_analytics,
};
const size_t ldg_roles_count = LDG_ARRAY_SIZE(ldg_roles);

int ldg_role_index(const char *name)
{
    for (size_t i = 0; i < ldg_roles_count; i++)
        if (strcmp(ldg_roles[i]->name, name) == 0)
            return (int)i;
    return -1;
}

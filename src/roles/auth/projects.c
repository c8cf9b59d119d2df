/* projects.c: see auth.h. */
#include "roles/auth/auth.h"

void ldg__auth_projects_routes(struct ldg_router *r)
{
    (void)r;
}

/* accounts.c: see auth.h. */
#include "roles/auth/auth.h"

void ldg__auth_accounts_routes(struct ldg_router *r)
{
    (void)r;
}

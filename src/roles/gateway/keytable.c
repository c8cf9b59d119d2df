/* keytable.c: see keytable.h. */
#include "roles/gateway/keytable.h"

#include "core/alloc.h"

static size_t bucket_of(const struct ldg_keytable *t, const char *digest)
{
    /* The digest is a SHA-256: its first 16 hex digits are already uniform. */
    uint64_t h = 0;
    for (int i = 0; i < 16 && digest[i]; i++) {
        char c = digest[i];
        h = (h << 4) | (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return (size_t)(h & (t->nbuckets - 1));
}

void ldg_keytable_init(struct ldg_keytable *t, size_t cap)
{
    LDG_ASSERT(cap >= 1);
    size_t nb = 16;
    while (nb < cap * 2)
        nb <<= 1;
    t->buckets = ldg_calloc(nb, sizeof *t->buckets);
    t->nbuckets = nb;
    t->count = 0;
    t->cap = cap;
    ldg_list_init(&t->lru);
}

void ldg_keytable_free(struct ldg_keytable *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct ldg_keyentry *e = t->buckets[i];
        while (e) {
            struct ldg_keyentry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof *t);
}

static struct ldg_keyentry **find_slot(struct ldg_keytable *t, const char *digest)
{
    struct ldg_keyentry **pp = &t->buckets[bucket_of(t, digest)];
    while (*pp && strcmp((*pp)->digest, digest) != 0)
        pp = &(*pp)->next;
    return pp;
}

struct ldg_keyentry *ldg_keytable_get(struct ldg_keytable *t, const char *digest)
{
    struct ldg_keyentry *e = *find_slot(t, digest);
    if (e) {
        ldg_list_remove(&t->lru, &e->lru);
        ldg_list_push_front(&t->lru, &e->lru);
    }
    return e;
}

static void unlink_entry(struct ldg_keytable *t, struct ldg_keyentry **pp)
{
    struct ldg_keyentry *e = *pp;
    *pp = e->next;
    ldg_list_remove(&t->lru, &e->lru);
    t->count--;
    free(e);
}

bool ldg_keytable_del(struct ldg_keytable *t, const char *digest)
{
    struct ldg_keyentry **pp = find_slot(t, digest);
    if (!*pp)
        return false;
    unlink_entry(t, pp);
    return true;
}

struct ldg_keyentry *ldg_keytable_put(struct ldg_keytable *t, const struct ldg_keyentry *src)
{
    struct ldg_keyentry **pp = find_slot(t, src->digest);
    struct ldg_keyentry *e = *pp;
    if (e) {
        struct ldg_list_node lru = e->lru;
        struct ldg_keyentry *next = e->next;
        *e = *src;
        e->lru = lru;
        e->next = next;
        ldg_list_remove(&t->lru, &e->lru);
        ldg_list_push_front(&t->lru, &e->lru);
        return e;
    }
    if (t->count >= t->cap) {
        struct ldg_list_node *last = t->lru.head.prev;
        struct ldg_keyentry *victim = ldg_container_of(last, struct ldg_keyentry, lru);
        unlink_entry(t, find_slot(t, victim->digest));
        pp = find_slot(t, src->digest); /* the chain may have changed */
    }
    e = ldg_malloc(sizeof *e);
    *e = *src;
    e->next = NULL;
    *pp = e;
    ldg_list_node_init(&e->lru);
    ldg_list_push_front(&t->lru, &e->lru);
    t->count++;
    return e;
}

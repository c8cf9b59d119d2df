/*
 * list.h: intrusive circular doubly-linked list with a count (pgbouncer statlist).
 * Not thread-safe: a list belongs to one loop thread (or is guarded by its owner's mutex).
 */
#ifndef LDG_LIST_H
#define LDG_LIST_H

#include "core/common.h"

struct ldg_list_node {
    struct ldg_list_node *prev, *next;
};

struct ldg_list {
    struct ldg_list_node head;
    size_t count;
};

static inline void ldg_list_init(struct ldg_list *l)
{
    l->head.prev = l->head.next = &l->head;
    l->count = 0;
}

static inline void ldg_list_node_init(struct ldg_list_node *n)
{
    n->prev = n->next = n;
}

static inline bool ldg_list_node_linked(const struct ldg_list_node *n)
{
    return n->next != n;
}

static inline bool ldg_list_empty(const struct ldg_list *l)
{
    return l->count == 0;
}

static inline void ldg_list_push_back(struct ldg_list *l, struct ldg_list_node *n)
{
    n->prev = l->head.prev;
    n->next = &l->head;
    l->head.prev->next = n;
    l->head.prev = n;
    l->count++;
}

static inline void ldg_list_push_front(struct ldg_list *l, struct ldg_list_node *n)
{
    n->next = l->head.next;
    n->prev = &l->head;
    l->head.next->prev = n;
    l->head.next = n;
    l->count++;
}

static inline void ldg_list_remove(struct ldg_list *l, struct ldg_list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
    l->count--;
}

static inline struct ldg_list_node *ldg_list_first(const struct ldg_list *l)
{
    return l->count ? l->head.next : NULL;
}

static inline struct ldg_list_node *ldg_list_pop_front(struct ldg_list *l)
{
    struct ldg_list_node *n = ldg_list_first(l);
    if (n)
        ldg_list_remove(l, n);
    return n;
}

/* Move all nodes of src to the back of dst; src becomes empty. */
static inline void ldg_list_splice(struct ldg_list *dst, struct ldg_list *src)
{
    if (!src->count)
        return;
    struct ldg_list_node *first = src->head.next, *last = src->head.prev;
    first->prev = dst->head.prev;
    dst->head.prev->next = first;
    last->next = &dst->head;
    dst->head.prev = last;
    dst->count += src->count;
    ldg_list_init(src);
}

/* Safe against removal of the current node. */
#define ldg_list_foreach_safe(l, it, tmp)                                                                    \
    for ((it) = (l)->head.next, (tmp) = (it)->next; (it) != &(l)->head; (it) = (tmp), (tmp) = (it)->next)

#endif

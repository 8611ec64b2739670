/*
 * convo_int.h - private to the convo module.
 */
#ifndef LOCI_CONVO_INT_H
#define LOCI_CONVO_INT_H

#include "store/db.h"

#include <stddef.h>
#include <stdint.h>

/* Hand a token of question_id's answer to its sink, if one is registered
 * in this process (under the registry lock). */
void convo__sink_emit(const char *question_id, const char *p, size_t n);

/* Set a conversation's updated_at (LOCI_ENOTFOUND when not the user's). */
int convo__touch(struct db_conn *c, const char *user_id, const char *id, int64_t now);

#endif

/* block_merge: folds one level of a qcow2 backing chain into the image above it, or the image
 * into its backing file (what a snapshot's deletion needs), and rewrites the backing file an
 * image names. */
#ifndef SHOJI_VMM_BLOCK_BLOCK_MERGE_H
#define SHOJI_VMM_BLOCK_BLOCK_MERGE_H

#include "../common/err.h"

/* Folds upper's backing file (one level) into upper: every guest-visible cluster that upper
 * does not itself allocate, and that the backing file decides (its data, or zeroes), is
 * copied into upper; then upper's backing becomes the backing's own backing (or none). The
 * guest-visible content of upper is the same before, during and after (a crash at any
 * moment leaves a valid image, at worst with the old backing still named). upper must be a
 * qcow2 image with a backing file; nothing else may have it open for writing. */
int block_merge(const char *upper_path, struct err *e);

/* The other direction: writes every cluster that upper itself allocates (data or zeroes)
 * into its backing file (one level), so that the backing reads as upper does; upper is not
 * changed and may be dropped afterwards. Any other image on that backing file changes too:
 * the caller makes sure none needs its old content. */
int block_commit(const char *upper_path, struct err *e);

/* Rewrites the backing file that the qcow2 image at path names (name NULL: none; format
 * "raw", "qcow2" or NULL), in the header cluster, synced. The content is not touched: the
 * caller guarantees that the new backing reads the same where path does not allocate. */
int block_set_backing(const char *path, const char *name, const char *format, struct err *e);

#endif

/*
 * Small POSIX file helpers for the backup and restore executors: creating
 * directories along a path, removing a tree without following links,
 * writing and reading whole buffers, opening a regular file without
 * following a link or blocking on a FIFO, and fsync of files and
 * directories. Each returns 0 (or a descriptor) on success and -1 with
 * errno set on failure; the executors turn errno into a message.
 */
#ifndef JM_FS_UTIL_H
#define JM_FS_UTIL_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Directories the backup creates are the operator's alone: a backup holds
 * a table's data. */
#define JM_FS_DIR_MODE 0700
#define JM_FS_FILE_MODE 0600

/* Opens the directory at absolute `path`, creating missing components
 * (JM_FS_DIR_MODE). Symbolic links in `path` are followed: the operator
 * chose it. Returns a descriptor or -1. */
int jm__fs_mkdir_p(const char *path);

/* Opens directory `name` under dirfd without following a link, creating it
 * first if `create`. Returns a descriptor or -1. */
int jm__fs_subdir(int dirfd, const char *name, int create);

/* Removes `name` under dirfd: a file, a link (not its target) or a whole
 * directory tree. A missing `name` is success. */
int jm__fs_remove_tree(int dirfd, const char *name);

/* Writes all n bytes (retrying short writes and EINTR). */
int jm__fs_write_all(int fd, const void *buf, size_t n);

/* Reads until n bytes or end of file; returns the count or -1. */
ssize_t jm__fs_read_full(int fd, void *buf, size_t n);

/* Opens `name` under dirfd for reading, refusing a symbolic link (ELOOP),
 * never blocking on a FIFO, and then refusing anything but a regular file
 * (EINVAL). *st gets its status. Returns a descriptor or -1. */
int jm__fs_open_regular(int dirfd, const char *name, struct stat *st);

/* fsync, retried on EINTR. */
int jm__fs_sync(int fd);

/* The text of an errno value (thread-safe). */
const char *jm__fs_strerror(int err, char *buf, size_t len);

#endif

// glibc's posix_spawn extension that closes every descriptor from a number on in the child (glibc 2.34+). spawn.h
// declares it only under _GNU_SOURCE, which Swift's Glibc module is not built with, so it is declared here again.
#include <spawn.h>

extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);

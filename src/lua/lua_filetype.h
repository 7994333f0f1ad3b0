/* lua_filetype: the module `fuglu_filetype`, the C half of the attachment blocker
 * (lua/plugins/attachment.lua): libmagic MIME types of bytes and of message parts (decoded in C,
 * never copied into Lua), and archive listing and extraction with libarchive, bounded in members,
 * bytes really read and depth (doc/lua-core-api.md#fuglu_filetype).
 *
 *   local ft = require "fuglu_filetype"
 *   ft.magic(s), ft.part_magic(msg, i), ft.detect(magictype, name[, enabled]),
 *   ft.scan(data, opts), ft.scan_part(msg, i, opts), ft.archive_types(), ft.versions()
 */
#ifndef FUGLU_LUA_FILETYPE_H
#define FUGLU_LUA_FILETYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <lua.h>

int luaopen_fuglu_filetype(lua_State *L);

/* The archive type for a libmagic MIME type ("zip", "tar", "gz", "bz2", "xz", "z", "7z", "rar"),
 * or NULL: Fuglu's table of magic prefixes, plus the newer libmagic spellings. */
const char *fg_filetype_type_from_magic(const char *mime);
/* The archive type for a file name by its extension, the longest extension first (tar.gz before
 * gz); *ext (if given) gets the extension that matched. NULL when no extension matches. */
const char *fg_filetype_type_from_name(const char *name, const char **ext);

#endif

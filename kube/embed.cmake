# Writes the file IN as a C byte array `sim_builtin_seed` (plus its length) into OUT, so that
# bastiond carries the default cluster seed and runs with no seed file at all.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT}
     "/* Generated from configs/cluster-seed.yaml by kube/embed.cmake: do not edit. */\n"
     "#include <stddef.h>\n"
     "const unsigned char sim_builtin_seed[] = {${bytes} 0};\n"
     "const size_t sim_builtin_seed_len = ${len};\n")

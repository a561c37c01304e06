// GGUF constants (gguf.h / gguf-py constants.py) shared by the writer, the reader and the
// tokenizer metadata of tools/gguf/write-gguf.mjs.

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const ALIGNMENT = 32;
/** Metadata value types. */
export const T = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
};
/** ggml tensor types used here. */
export const GGML = { F32: 0, F16: 1 };
export const GGML_SIZE = { [GGML.F32]: 4, [GGML.F16]: 2 };
/** llama_token_type */
export const TOKEN_TYPE = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
};
export const FILE_TYPE_MOSTLY_F16 = 1;

/*
 * N-API addon: BIP-340 Schnorr verification with the system libsecp256k1 (schnorrsig + extrakeys modules).
 *
 *   verify(msg32, pubkey32, sig64) -> boolean
 *
 * Arguments are Uint8Arrays (Buffers included) of exactly 32, 32 and 64 bytes; anything else throws a TypeError
 * before libsecp256k1 sees a pointer, so C never reads past a caller's buffer. A pubkey that is not an x coordinate
 * on the curve (or is >= p) answers false, like any other invalid signature.
 *
 * Built by `make native` (node-gyp against Node's own node_api.h); the relay runs without it (see
 * relay/src/crypto/native-secp256k1.ts).
 */
#include <pthread.h>
#include <stddef.h>

#include <node_api.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>

/*
 * One context for the whole process, shared by every thread that loads the addon (main thread and workers).
 * Verification only reads it, which libsecp256k1 allows concurrently; it lives until the process exits.
 * secp256k1_context_create also runs the library's self-test.
 */
static secp256k1_context *ctx = NULL;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void create_context(void) {
  ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
}

/* Fills *data with the bytes of a Uint8Array of exactly `len` bytes; otherwise throws a TypeError and returns 0. */
static int get_bytes(napi_env env, napi_value value, size_t len, const char *name, const unsigned char **data) {
  bool is_typed_array = false;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok || !is_typed_array) {
    napi_throw_type_error(env, NULL, name);
    return 0;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void *raw = NULL;
  if (napi_get_typedarray_info(env, value, &type, &length, &raw, NULL, NULL) != napi_ok || type != napi_uint8_array ||
      length != len || raw == NULL) {
    napi_throw_type_error(env, NULL, name);
    return 0;
  }
  *data = (const unsigned char *)raw;
  return 1;
}

static napi_value verify(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc != 3) {
    napi_throw_type_error(env, NULL, "verify(msg32, pubkey32, sig64) takes 3 arguments");
    return NULL;
  }
  const unsigned char *msg = NULL, *pub = NULL, *sig = NULL;
  if (!get_bytes(env, argv[0], 32, "msg32 must be a 32-byte Uint8Array", &msg)) return NULL;
  if (!get_bytes(env, argv[1], 32, "pubkey32 must be a 32-byte Uint8Array", &pub)) return NULL;
  if (!get_bytes(env, argv[2], 64, "sig64 must be a 64-byte Uint8Array", &sig)) return NULL;

  secp256k1_xonly_pubkey pubkey;
  int ok = secp256k1_xonly_pubkey_parse(ctx, &pubkey, pub) && secp256k1_schnorrsig_verify(ctx, sig, msg, 32, &pubkey);

  napi_value result;
  if (napi_get_boolean(env, ok == 1, &result) != napi_ok) return NULL;
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  pthread_once(&ctx_once, create_context);
  if (ctx == NULL) {
    napi_throw_error(env, NULL, "secp256k1_context_create failed");
    return NULL;
  }
  napi_value fn;
  if (napi_create_function(env, "verify", NAPI_AUTO_LENGTH, verify, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "verify", fn) != napi_ok) return NULL;
  return exports;
}

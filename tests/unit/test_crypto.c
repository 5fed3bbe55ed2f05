/* Hashes, keys and signatures (lib/crypto.c) against published vectors,
 * OpenSSL's own command line, and the domain separation rules. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

static void unhex(const char *s, uint8_t *out, size_t n)
{
	ck_assert_int_eq(hex_decode(s, out, n), 0);
}

/* --- SHA-256 ------------------------------------------------------------
 * Known answers from FIPS 180-2 appendix B (and the empty message). */

static void assert_sha256(const void *p, size_t n, const char *want_hex)
{
	uint8_t want[HASH_LEN], got[HASH_LEN];

	unhex(want_hex, want, HASH_LEN);
	sha256(p, n, got);
	ck_assert_mem_eq(got, want, HASH_LEN);
}

START_TEST(test_sha256_known_answers)
{
	assert_sha256("abc", 3,
		      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_sha256("", 0,
		      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_sha256(NULL, 0,
		      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
		      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}
END_TEST

START_TEST(test_sha256_stream)
{
	/* One million 'a' (FIPS 180-2 B.3), fed in uneven pieces. */
	static char a[1000];
	uint8_t want[HASH_LEN], got[HASH_LEN];
	struct sha256_stream *s = sha256_begin();
	size_t done = 0, piece = 1;

	memset(a, 'a', sizeof(a));
	while (done < 1000000) {
		size_t n = piece < 1000000 - done ? piece : 1000000 - done;
		if (n > sizeof(a))
			n = sizeof(a);
		sha256_add(s, a, n);
		done += n;
		piece = piece * 3 + 1;
	}
	sha256_end(s, got);
	unhex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", want, HASH_LEN);
	ck_assert_mem_eq(got, want, HASH_LEN);

	/* A stream of nothing is the empty hash. */
	s = sha256_begin();
	sha256_end(s, got);
	sha256("", 0, want);
	ck_assert_mem_eq(got, want, HASH_LEN);
}
END_TEST

/* --- Ed25519: RFC 8032 section 7.1 --------------------------------------
 * TEST 1, 2, 3, 1024 and SHA(abc), as published in RFC 8032 section 7.1
 * (SECRET KEY is the 32-byte seed). */

struct rfc8032_vector {
	const char *name;
	const char *secret;
	const char *public;
	const char *message;
	const char *signature;
};

static const struct rfc8032_vector rfc8032[] = {
	{ "TEST 1",
	  "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	  "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	  "",
	  "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
	  "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b" },
	{ "TEST 2",
	  "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	  "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
	  "72",
	  "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
	  "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00" },
	{ "TEST 3",
	  "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	  "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
	  "af82",
	  "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
	  "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a" },
	{ "TEST 1024",
	  "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
	  "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
	  "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
	  "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
	  "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
	  "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
	  "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
	  "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
	  "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
	  "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
	  "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
	  "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
	  "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
	  "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
	  "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
	  "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
	  "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
	  "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
	  "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
	  "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
	  "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
	  "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
	  "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
	  "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
	  "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
	  "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
	  "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
	  "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
	  "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
	  "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
	  "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
	  "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
	  "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
	  "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
	  "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
	  "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03" },
	{ "TEST SHA(abc)",
	  "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
	  "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
	  /* SHA-512("abc") */
	  "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
	  "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
	  "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
	  "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704" },
};

#define N_RFC8032 (sizeof(rfc8032) / sizeof(rfc8032[0]))

START_TEST(test_ed25519_rfc8032)
{
	const struct rfc8032_vector *v = &rfc8032[_i];
	uint8_t seed[32], pub[PUBKEY_LEN], want[SIG_LEN], sig[SIG_LEN];
	size_t len = strlen(v->message) / 2;
	uint8_t *msg = malloc(len ? len : 1);
	struct tally_key k;

	ck_assert_ptr_nonnull(msg);
	unhex(v->secret, seed, sizeof(seed));
	unhex(v->public, pub, sizeof(pub));
	unhex(v->message, msg, len);
	unhex(v->signature, want, sizeof(want));
	if (_i == 3)
		ck_assert_uint_eq(len, 1023);

	ck_assert_int_eq(key_from_seed(&k, seed), 0);
	ck_assert_msg(!memcmp(k.pub, pub, PUBKEY_LEN), "%s: public key", v->name);
	ck_assert_int_eq(ed25519_sign(&k, msg, len, sig), 0);
	ck_assert_msg(!memcmp(sig, want, SIG_LEN), "%s: signature", v->name);
	ck_assert_int_eq(ed25519_verify(pub, msg, len, want), 0);

	/* Any flipped bit in the signature, the message or the key fails. */
	for (int byte = 0; byte < SIG_LEN; byte += 9) {
		sig[byte] ^= 0x01;
		ck_assert_int_eq(ed25519_verify(pub, msg, len, sig), TALLY_E_SIGNATURE);
		sig[byte] ^= 0x01;
	}
	if (len) {
		msg[len / 2] ^= 0x80;
		ck_assert_int_eq(ed25519_verify(pub, msg, len, sig), TALLY_E_SIGNATURE);
		msg[len / 2] ^= 0x80;
	}
	if (len)
		ck_assert_int_eq(ed25519_verify(pub, msg, len - 1, sig), TALLY_E_SIGNATURE);
	pub[0] ^= 0x02;
	ck_assert_int_ne(ed25519_verify(pub, msg, len, sig), 0);
	key_free(&k);
	ck_assert_ptr_null(k.pkey);
	free(msg);
}
END_TEST

START_TEST(test_key_generate)
{
	struct tally_key a, b;
	uint8_t sig[SIG_LEN];

	ck_assert_int_eq(key_generate(&a), 0);
	ck_assert_int_eq(key_generate(&b), 0);
	ck_assert_mem_ne(a.pub, b.pub, PUBKEY_LEN);
	ck_assert_int_eq(ed25519_sign(&a, "lease", 5, sig), 0);
	ck_assert_int_eq(ed25519_verify(a.pub, "lease", 5, sig), 0);
	ck_assert_int_eq(ed25519_verify(b.pub, "lease", 5, sig), TALLY_E_SIGNATURE);
	key_free(&a);
	key_free(&b);
}
END_TEST

/* --- domain separation -------------------------------------------------- */

static void test_key(struct tally_key *k)
{
	uint8_t seed[32];

	unhex(rfc8032[0].secret, seed, sizeof(seed));
	ck_assert_int_eq(key_from_seed(k, seed), 0);
}

/* Three chains: two share a chain id but not a genesis. */
static const uint8_t chains[3][HASH_LEN] = {
	"genesis hash of tally-dev, one..",
	"genesis hash of tally-dev, two..",
	"genesis hash of tally-testnet...",
};

START_TEST(test_domain_separation)
{
	static const char payload[] = "usage record 7";
	uint8_t sig[SIG_LEN];
	struct tally_key k;

	test_key(&k);
	for (int d = 0; d < SIG__COUNT; d++) {
		for (size_t c = 0; c < 3; c++) {
			ck_assert_int_eq(sig_sign(&k, d, chains[c], payload, sizeof(payload), sig), 0);
			for (int d2 = 0; d2 < SIG__COUNT; d2++) {
				for (size_t c2 = 0; c2 < 3; c2++) {
					int want = d == d2 && c == c2 ? 0 : TALLY_E_SIGNATURE;
					ck_assert_msg(sig_verify(k.pub, d2, chains[c2], payload,
								 sizeof(payload), sig) == want,
						      "signed %s/%zu, verified %s/%zu",
						      sig_domain_name(d), c, sig_domain_name(d2), c2);
				}
			}
			/* Never valid as a raw signature of the payload. */
			ck_assert_int_eq(ed25519_verify(k.pub, payload, sizeof(payload), sig),
					 TALLY_E_SIGNATURE);
		}
	}
	key_free(&k);
}
END_TEST

START_TEST(test_signed_message_layout)
{
	/* The documented message, built by hand: Ed25519 is deterministic,
	 * so the raw signature over it equals sig_sign's. */
	uint8_t msg[9 + 4 + 1 + HASH_LEN + 3];
	uint8_t a[SIG_LEN], b[SIG_LEN];
	struct tally_key k;

	memcpy(msg, "tally/v2/vote", 13);
	msg[13] = 0x00;
	memcpy(msg + 14, chains[0], HASH_LEN);
	memcpy(msg + 14 + HASH_LEN, "pay", 3);
	test_key(&k);
	ck_assert_int_eq(sig_sign(&k, SIG_VOTE, chains[0], "pay", 3, a), 0);
	ck_assert_int_eq(ed25519_sign(&k, msg, sizeof(msg), b), 0);
	ck_assert_mem_eq(a, b, SIG_LEN);
	key_free(&k);
}
END_TEST

START_TEST(test_sign_bad_arguments)
{
	uint8_t sig[SIG_LEN];
	struct tally_key k;

	test_key(&k);
	ck_assert_int_eq(sig_sign(&k, SIG__COUNT, chains[0], "p", 1, sig), TALLY_E_INVALID);
	ck_assert_int_eq(sig_sign(&k, SIG_TX, NULL, "p", 1, sig), TALLY_E_INVALID);
	ck_assert_int_eq(sig_verify(k.pub, SIG_TX, NULL, "p", 1, sig), TALLY_E_INVALID);
	ck_assert_int_eq(sig_verify(k.pub, (enum sig_domain)-1, chains[0], "p", 1, sig),
			 TALLY_E_INVALID);
	ck_assert_str_eq(sig_domain_name(SIG_TX), "tx");
	ck_assert_str_eq(sig_domain_name(SIG_VOTE), "vote");
	ck_assert_str_eq(sig_domain_name(SIG_REQUEST), "request");
	ck_assert_str_eq(sig_domain_name(SIG_PROPOSAL), "proposal");
	ck_assert_ptr_null(sig_domain_name(SIG__COUNT));
	key_free(&k);
}
END_TEST

/* Strict verification: the eight points of small order (and each with its
 * sign bit set), and non-canonical encodings (y >= p), are refused as keys
 * and as a signature's R; an S at or above the group order is refused. */
static void hex32(const char *hex, uint8_t out[32])
{
	ck_assert_int_eq(hex_decode(hex, out, 32), 0);
}

static const char *const small_order[] = {
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
};

START_TEST(test_strict_keys)
{
	uint8_t k[32];
	struct tally_key good;

	for (size_t i = 0; i < sizeof(small_order) / sizeof(small_order[0]); i++) {
		hex32(small_order[i], k);
		ck_assert_int_eq(key_check(k), TALLY_E_KEY);
		k[31] |= 0x80;      /* the other x: the same y, still small order */
		ck_assert_int_eq(key_check(k), TALLY_E_KEY);
	}
	/* y = p .. 2^255 - 1 are not canonical (p is 0, p + 1 is 1, ...). */
	hex32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", k);
	ck_assert_int_eq(key_check(k), TALLY_E_KEY);
	hex32("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", k);
	ck_assert_int_eq(key_check(k), TALLY_E_KEY);
	hex32("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", k);
	ck_assert_int_eq(key_check(k), TALLY_E_KEY);
	/* p - 2 is canonical (whether it is a point is OpenSSL's to say). */
	hex32("ebffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", k);
	ck_assert_int_eq(key_check(k), 0);
	test_key(&good);
	ck_assert_int_eq(key_check(good.pub), 0);
	key_free(&good);
}
END_TEST

START_TEST(test_strict_signatures)
{
	static const uint8_t L[32] = {
		0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde,
		0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
	};
	uint8_t sig[SIG_LEN], bad[SIG_LEN], id[32];
	struct tally_key k;

	test_key(&k);
	ck_assert_int_eq(ed25519_sign(&k, "m", 1, sig), 0);
	ck_assert_int_eq(ed25519_verify(k.pub, "m", 1, sig), 0);
	/* S + L is the same scalar mod L: refused, not accepted as malleable. */
	memcpy(bad, sig, SIG_LEN);
	unsigned carry = 0;
	for (int i = 0; i < 32; i++) {
		unsigned v = bad[32 + i] + L[i] + carry;
		bad[32 + i] = (uint8_t)v;
		carry = v >> 8;
	}
	if (!carry && bad[63] < 0x20)     /* fits 256 bits, as it does for a random S */
		ck_assert_int_eq(ed25519_verify(k.pub, "m", 1, bad), TALLY_E_SIGNATURE);
	memcpy(bad, sig, 32);
	memcpy(bad + 32, L, 32);
	ck_assert_int_eq(ed25519_verify(k.pub, "m", 1, bad), TALLY_E_SIGNATURE);
	/* A small-order R, and the forgery: identity key, R = identity,
	 * S = 0, which passes the unchecked equation for any message. */
	for (size_t i = 0; i < sizeof(small_order) / sizeof(small_order[0]); i++) {
		memcpy(bad, sig, SIG_LEN);
		hex32(small_order[i], bad);
		ck_assert_int_eq(ed25519_verify(k.pub, "m", 1, bad), TALLY_E_SIGNATURE);
	}
	hex32(small_order[1], id);
	memset(bad, 0, SIG_LEN);
	bad[0] = 1;
	ck_assert_int_eq(ed25519_verify(id, "anything", 8, bad), TALLY_E_KEY);
	ck_assert_int_eq(sig_verify(id, SIG_TX, chains[0], "x", 1, bad), TALLY_E_KEY);
	key_free(&k);
}
END_TEST

START_TEST(test_chain_id_valid)
{
	static const char *const good[] = {
		"a", "tally-devnet", "tally.main_1", "0", "-._",
		"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijkl",   /* 48 */
	};
	static const char *const bad[] = {
		"", "Tally", "tally devnet", "tally/devnet", "tally\n", "caf\xc3\xa9",
		"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklm",  /* 49 */
		"tally:1", "a+b",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(chain_id_valid(good[i]) == 0, "\"%s\"", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(chain_id_valid(bad[i]) == TALLY_E_CHAIN_ID, "\"%s\"", bad[i]);
	ck_assert_int_eq(chain_id_valid(NULL), TALLY_E_CHAIN_ID);
}
END_TEST

/* --- PEM files ------------------------------------------------------------
 * Each test works in its own directory inside the case's, which is made and
 * removed by the parent process (an unchecked fixture), so it is removed
 * even when a test fails. */

static char base[40];     /* per test case */
static char tmpdir[80];   /* per test, inside base */

static void case_begin(void)
{
	lt_case_dir(base, sizeof(base), "crypto");
}

static void case_end(void)
{
	cb_rm_tree(base);
}

static void tmpdir_setup(void)
{
	lt_test_dir(tmpdir, sizeof(tmpdir), base);
}

static void tmpdir_teardown(void)
{
	cb_rm_tree(tmpdir);
}

static const char *tmp_path(const char *name)
{
	static char path[4][512];
	static int next;
	char *p = path[next++ % 4];

	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	return p;
}

static int run(const char *fmt, const char *a, const char *b)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), fmt, a, b);
	return system(cmd);
}

static size_t read_file(const char *path, uint8_t *buf, size_t max)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	ck_assert_msg(f != NULL, "open %s", path);
	n = fread(buf, 1, max, f);
	fclose(f);
	return n;
}

START_TEST(test_pem_round_trip)
{
	const char *path = tmp_path("tenant.pem");
	const char *der = tmp_path("tenant.pub.der");
	struct tally_key k, back;
	struct stat st;
	uint8_t sig[SIG_LEN], buf[128];
	size_t n;

	ck_assert_int_eq(key_generate(&k), 0);
	ck_assert_int_eq(key_save_pem(&k, path), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);

	ck_assert_int_eq(key_load_pem(&back, path), 0);
	ck_assert_mem_eq(back.pub, k.pub, PUBKEY_LEN);
	ck_assert_int_eq(sig_sign(&back, SIG_TX, chains[2], "x", 1, sig), 0);
	ck_assert_int_eq(sig_verify(k.pub, SIG_TX, chains[2], "x", 1, sig), 0);

	/* OpenSSL's own tool reads the file, and finds the same public key
	 * (the last 32 bytes of its SubjectPublicKeyInfo). */
	ck_assert_int_eq(run("openssl pkey -in '%s' -noout%s", path, ""), 0);
	ck_assert_int_eq(run("openssl pkey -in '%s' -pubout -outform DER -out '%s'", path, der), 0);
	n = read_file(der, buf, sizeof(buf));
	ck_assert_uint_eq(n, 44);
	ck_assert_mem_eq(buf + 12, k.pub, PUBKEY_LEN);

	/* The file is a PKCS#8 private key. */
	n = read_file(path, buf, sizeof(buf));
	ck_assert(n > 28 && !memcmp(buf, "-----BEGIN PRIVATE KEY-----\n", 28));
	key_free(&k);
	key_free(&back);
}
END_TEST

START_TEST(test_pem_from_openssl)
{
	const char *path = tmp_path("genpkey.pem");
	const char *der = tmp_path("genpkey.pub.der");
	struct tally_key k;
	uint8_t buf[128];

	ck_assert_int_eq(run("openssl genpkey -algorithm ed25519 -out '%s'%s", path, ""), 0);
	ck_assert_int_eq(key_load_pem(&k, path), 0);
	ck_assert_int_eq(run("openssl pkey -in '%s' -pubout -outform DER -out '%s'", path, der), 0);
	ck_assert_uint_eq(read_file(der, buf, sizeof(buf)), 44);
	ck_assert_mem_eq(buf + 12, k.pub, PUBKEY_LEN);
	key_free(&k);
}
END_TEST

START_TEST(test_pem_no_overwrite)
{
	const char *path = tmp_path("keep.pem");
	struct tally_key a, b, back;
	uint8_t before[512], after[512];
	size_t n_before, n_after;
	DIR *d;
	struct dirent *e;
	int files = 0;

	ck_assert_int_eq(key_generate(&a), 0);
	ck_assert_int_eq(key_generate(&b), 0);
	ck_assert_int_eq(key_save_pem(&a, path), 0);
	n_before = read_file(path, before, sizeof(before));
	ck_assert_int_eq(key_save_pem(&b, path), TALLY_E_EXISTS);
	n_after = read_file(path, after, sizeof(after));
	ck_assert_uint_eq(n_after, n_before);
	ck_assert_mem_eq(after, before, n_before);
	ck_assert_int_eq(key_load_pem(&back, path), 0);
	ck_assert_mem_eq(back.pub, a.pub, PUBKEY_LEN);

	/* No temporary file left behind. */
	d = opendir(tmpdir);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "keep.pem", 8))
			files++;
	closedir(d);
	ck_assert_int_eq(files, 1);

	/* A directory that does not exist. */
	ck_assert_int_eq(key_save_pem(&a, tmp_path("missing/dir.pem")), TALLY_E_IO);
	key_free(&a);
	key_free(&b);
	key_free(&back);
}
END_TEST

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(p, 1, n, f), n);
	ck_assert_int_eq(fclose(f), 0);
}

static void write_pem_key(const char *path, EVP_PKEY *pkey, const EVP_CIPHER *cipher)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_PrivateKey(f, pkey, cipher, NULL, 0, NULL,
					      cipher ? (void *)"secret" : NULL), 1);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_pem_wrong_or_garbage)
{
	struct tally_key k, good;
	uint8_t buf[512];
	size_t n;

	/* Keys of other types. */
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	ck_assert_ptr_nonnull(ec);
	ck_assert_ptr_nonnull(x25519);
	write_pem_key(tmp_path("ec.pem"), ec, NULL);
	write_pem_key(tmp_path("x25519.pem"), x25519, NULL);
	ck_assert_int_eq(key_load_pem(&k, tmp_path("ec.pem")), TALLY_E_KEY);
	ck_assert_ptr_null(k.pkey);
	ck_assert_int_eq(key_load_pem(&k, tmp_path("x25519.pem")), TALLY_E_KEY);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(x25519);

	/* An encrypted Ed25519 key: refused, without asking for a passphrase. */
	ck_assert_int_eq(key_generate(&good), 0);
	write_pem_key(tmp_path("encrypted.pem"), good.pkey, EVP_aes_256_cbc());
	ck_assert_int_eq(key_load_pem(&k, tmp_path("encrypted.pem")), TALLY_E_KEY);

	/* Garbage, an empty file, a public key, half a key. */
	write_file(tmp_path("garbage.pem"), "not a key\n", 10);
	ck_assert_int_eq(key_load_pem(&k, tmp_path("garbage.pem")), TALLY_E_KEY);
	write_file(tmp_path("empty.pem"), "", 0);
	ck_assert_int_eq(key_load_pem(&k, tmp_path("empty.pem")), TALLY_E_KEY);
	ck_assert_int_eq(run("openssl pkey -in '%s' -pubout -out '%s'",
			     tmp_path("x25519.pem"), tmp_path("public.pem")), 0);
	ck_assert_int_eq(key_load_pem(&k, tmp_path("public.pem")), TALLY_E_KEY);
	ck_assert_int_eq(key_save_pem(&good, tmp_path("good.pem")), 0);
	n = read_file(tmp_path("good.pem"), buf, sizeof(buf));
	write_file(tmp_path("half.pem"), buf, n / 2);
	ck_assert_int_eq(key_load_pem(&k, tmp_path("half.pem")), TALLY_E_KEY);
	/* One changed base64 character in the algorithm identifier (the 13th
	 * of "MC4CAQAwBQYDK2VwBCIEI", inside the Ed25519 OID 1.3.101.112). */
	ck_assert(!memcmp(buf + 28, "MC4CAQAwBQYDK2VwBCIEI", 21));
	buf[28 + 12] = 'L';
	write_file(tmp_path("changed-oid.pem"), buf, n);
	ck_assert_int_eq(key_load_pem(&k, tmp_path("changed-oid.pem")), TALLY_E_KEY);
	buf[28 + 12] = 'K';
	/* One changed character in the seed: still an Ed25519 key, another. */
	buf[28 + 40] = buf[28 + 40] == 'A' ? 'B' : 'A';
	write_file(tmp_path("changed-seed.pem"), buf, n);
	ck_assert_int_eq(key_load_pem(&k, tmp_path("changed-seed.pem")), 0);
	ck_assert_mem_ne(k.pub, good.pub, PUBKEY_LEN);
	key_free(&k);

	ck_assert_int_eq(key_load_pem(&k, tmp_path("absent.pem")), TALLY_E_NOTFOUND);
	key_free(&good);
}
END_TEST

Suite *crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *tc = tcase_create("sha256");

	tcase_add_test(tc, test_sha256_known_answers);
	tcase_add_test(tc, test_sha256_stream);
	suite_add_tcase(s, tc);

	tc = tcase_create("ed25519");
	tcase_add_loop_test(tc, test_ed25519_rfc8032, 0, N_RFC8032);
	tcase_add_test(tc, test_key_generate);
	tcase_add_test(tc, test_domain_separation);
	tcase_add_test(tc, test_signed_message_layout);
	tcase_add_test(tc, test_sign_bad_arguments);
	tcase_add_test(tc, test_strict_keys);
	tcase_add_test(tc, test_strict_signatures);
	tcase_add_test(tc, test_chain_id_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("pem");
	tcase_add_unchecked_fixture(tc, case_begin, case_end);
	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, test_pem_round_trip);
	tcase_add_test(tc, test_pem_from_openssl);
	tcase_add_test(tc, test_pem_no_overwrite);
	tcase_add_test(tc, test_pem_wrong_or_garbage);
	suite_add_tcase(s, tc);
	return s;
}

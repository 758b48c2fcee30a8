/*
 * SHA-256 (src/executors/sha256.c) against the FIPS 180 examples and known
 * digests at the padding boundaries (55, 56, 63, 64 … bytes), and the same
 * digest whatever the split of the input into update() calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sha256.h"

static void check_hex(const void *data, size_t n, const char *expect)
{
    char hex[JM_SHA256_HEX_SIZE];
    jm__sha256_hex(data, n, hex);
    assert_string_equal(hex, expect);
}

static void fips_examples(void **state)
{
    (void)state;
    check_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    check_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_hex(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_hex(two, strlen(two),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *four = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    check_hex(four, strlen(four),
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void million_a(void **state)
{
    (void)state;
    jm__sha256 s;
    char chunk[1000], hex[JM_SHA256_HEX_SIZE];
    memset(chunk, 'a', sizeof chunk);
    jm__sha256_init(&s);
    for (int i = 0; i < 1000; i++)
        jm__sha256_update(&s, chunk, sizeof chunk);
    jm__sha256_final_hex(&s, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void padding_boundaries(void **state)
{
    (void)state;
    static const struct {
        size_t n;
        const char *hex;
    } v[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    char a[128];
    memset(a, 'a', sizeof a);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        check_hex(a, v[i].n, v[i].hex);
}

/* Every split of 1 KiB of all byte values into two or three updates gives
 * the one-shot digest. */
static void any_split_same_digest(void **state)
{
    (void)state;
    unsigned char data[1024];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)i;
    const char *expect = "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9";
    check_hex(data, sizeof data, expect);
    for (size_t cut = 0; cut <= 200; cut++) {
        for (size_t cut2 = cut; cut2 <= cut + 130 && cut2 <= sizeof data; cut2 += 13) {
            jm__sha256 s;
            char hex[JM_SHA256_HEX_SIZE];
            jm__sha256_init(&s);
            jm__sha256_update(&s, data, cut);
            jm__sha256_update(&s, data + cut, cut2 - cut);
            jm__sha256_update(&s, data + cut2, sizeof data - cut2);
            jm__sha256_final_hex(&s, hex);
            assert_string_equal(hex, expect);
        }
    }
}

static void binary_digest_matches_hex(void **state)
{
    (void)state;
    jm__sha256 s;
    unsigned char d[JM_SHA256_DIGEST_SIZE];
    jm__sha256_init(&s);
    jm__sha256_update(&s, "abc", 3);
    jm__sha256_final(&s, d);
    assert_int_equal(d[0], 0xba);
    assert_int_equal(d[31], 0xad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fips_examples),
        cmocka_unit_test(million_a),
        cmocka_unit_test(padding_boundaries),
        cmocka_unit_test(any_split_same_digest),
        cmocka_unit_test(binary_digest_matches_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

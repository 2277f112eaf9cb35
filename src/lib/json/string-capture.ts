/** A string value whose JSON text (between the quotes) is longer than this is not captured. */
export const STRING_CAPTURE_LIMIT = 256;

const BACKSLASH = 0x5c;
const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");
// ignoreBOM keeps a U+FEFF that begins a captured string: it is the string's, not the body's.
const DECODER = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * The JSON text of a string value, between its quotes and with its escapes as written, up to
 * {@link STRING_CAPTURE_LIMIT} bytes. The buffer is allocated on first use.
 */
export class StringCapture {
	#bytes: Uint8Array | undefined;
	#length = 0;

	/** Starts a new string. */
	reset(): void {
		this.#length = 0;
	}

	/** Appends a byte of the text; false when the text is over the capture limit. */
	byte(byte: number): boolean {
		if (this.#length === STRING_CAPTURE_LIMIT) return false;
		this.#bytes ??= new Uint8Array(STRING_CAPTURE_LIMIT);
		this.#bytes[this.#length++] = byte;
		return true;
	}

	/** A raw control character is captured as its escape, so the captured text stays valid JSON. */
	control(byte: number): boolean {
		return (
			this.byte(BACKSLASH) &&
			this.byte(0x75) &&
			this.byte(0x30) &&
			this.byte(0x30) &&
			this.byte(HEX_DIGITS[byte >> 4] as number) &&
			this.byte(HEX_DIGITS[byte & 15] as number)
		);
	}

	/** Takes a copy of another capture's text. */
	copyFrom(other: StringCapture): void {
		this.#length = 0;
		if (other.#bytes === undefined) return;
		this.#bytes ??= new Uint8Array(STRING_CAPTURE_LIMIT);
		this.#bytes.set(other.#bytes.subarray(0, other.#length));
		this.#length = other.#length;
	}

	/** The string the text stands for. */
	value(): string {
		const text = this.#bytes === undefined ? "" : DECODER.decode(this.#bytes.subarray(0, this.#length));
		// The text passed the tokenizer's checks, so JSON.parse decodes its escapes exactly.
		return JSON.parse(`"${text}"`) as string;
	}
}

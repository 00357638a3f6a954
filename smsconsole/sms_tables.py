"""Twilio's Smart Encoding table: the look-alike characters Twilio replaces before it counts and
sends a message when Smart Encoding is on, with what each becomes.

Source: Twilio's published "List of characters replaced by Smart Encoding"
(https://www.twilio.com/docs/messaging/services/smart-encoding-char-list) as Twilio transcribes it
in its own segment calculator (github.com/TwilioDevEd/message-segment-calculator,
src/libs/SmartEncodingMap.ts, "Twilio's current SmartEncoding"): the same 270 code points, in the
same order. The docs page's first 25 rows (double quotes, apostrophes) were checked against it
one by one and agree, except that the calculator also lists „ (U+201E) with the double quotes.
Where the calculator's transcription reads oddly we use the reading that a person sees:

- the spaces (no-break, en/em, thin, hair, ideographic …) and the C1 controls that show as a
  space become one space (the calculator writes two; Telnyx's copy of the same table says
  "space") — not confirmed against the docs page's own cell, which we could not read;
- ‹ and › become < and > (the calculator swaps them; one septet either way).

Kept as the table has them, though surprising: a tab becomes 7 spaces (Telnyx's copy says the
same), U+2028 and U+2029 (line and paragraph separators) become a space, not a line feed, and
‚ (single low-9 quotation mark) becomes a comma.

Letters never change case: ç, which GSM 03.38 lacks, is not in Twilio's table and stays (the
message is UCS-2). The small capital letters (ᴀ ʙ ᴄ …) become the capital letters they are drawn
as, as in Twilio's table. Replacement is per code point, so a combining mark in the table (U+0302
combining circumflex, U+0303 combining tilde …) becomes its spacing character after its base.
"""

from __future__ import annotations

TWILIO_SMART_ENCODING: dict[str, str] = {
    "\u00ab": '"',  # « left-pointing double angle quotation mark
    "\u00bb": '"',  # » right-pointing double angle quotation mark
    "\u201c": '"',  # “ left double quotation mark
    "\u201d": '"',  # ” right double quotation mark
    "\u02ba": '"',  # ʺ modifier letter double prime
    "\u02ee": '"',  # ˮ modifier letter double apostrophe
    "\u201f": '"',  # ‟ double high-reversed-9 quotation mark
    "\u201e": '"',  # „ double low-9 quotation mark
    "\u275d": '"',  # ❝ heavy double turned comma quotation mark ornament
    "\u275e": '"',  # ❞ heavy double comma quotation mark ornament
    "\u301d": '"',  # 〝 reversed double prime quotation mark
    "\u301e": '"',  # 〞 double prime quotation mark
    "\uff02": '"',  # ＂ fullwidth quotation mark
    "\u2018": "'",  # ‘ left single quotation mark
    "\u2019": "'",  # ’ right single quotation mark
    "\u02bb": "'",  # ʻ modifier letter turned comma
    "\u02c8": "'",  # ˈ modifier letter vertical line
    "\u02bc": "'",  # ʼ modifier letter apostrophe
    "\u02bd": "'",  # ʽ modifier letter reversed comma
    "\u02b9": "'",  # ʹ modifier letter prime
    "\u201b": "'",  # ‛ single high-reversed-9 quotation mark
    "\uff07": "'",  # ＇ fullwidth apostrophe
    "\u00b4": "'",  # ´ acute accent
    "\u02ca": "'",  # ˊ modifier letter acute accent
    "\u0060": "'",  # ` grave accent
    "\u02cb": "'",  # ˋ modifier letter grave accent
    "\u275b": "'",  # ❛ heavy single turned comma quotation mark ornament
    "\u275c": "'",  # ❜ heavy single comma quotation mark ornament
    "\u0313": "'",  # combining comma above
    "\u0314": "'",  # combining reversed comma above
    "\ufe10": "'",  # ︐ presentation form for vertical comma
    "\ufe11": "'",  # ︑ presentation form for vertical ideographic comma
    "\u00f7": "/",  # ÷ division sign
    "\u00bc": "1/4",  # ¼ vulgar fraction one quarter
    "\u00bd": "1/2",  # ½ vulgar fraction one half
    "\u00be": "3/4",  # ¾ vulgar fraction three quarters
    "\u29f8": "/",  # ⧸ big solidus
    "\u0337": "/",  # combining short solidus overlay
    "\u0338": "/",  # combining long solidus overlay
    "\u2044": "/",  # ⁄ fraction slash
    "\u2215": "/",  # ∕ division slash
    "\uff0f": "/",  # ／ fullwidth solidus
    "\u29f9": "\\",  # ⧹ big reverse solidus
    "\u29f5": "\\",  # ⧵ reverse solidus operator
    "\u20e5": "\\",  # combining reverse solidus overlay
    "\ufe68": "\\",  # ﹨ small reverse solidus
    "\uff3c": "\\",  # ＼ fullwidth reverse solidus
    "\u0332": "_",  # combining low line
    "\uff3f": "_",  # ＿ fullwidth low line
    "\u20d2": "|",  # combining long vertical line overlay
    "\u20d3": "|",  # combining short vertical line overlay
    "\u2223": "|",  # ∣ divides
    "\uff5c": "|",  # ｜ fullwidth vertical line
    "\u23b8": "|",  # ⎸ left vertical box line
    "\u23b9": "|",  # ⎹ right vertical box line
    "\u23d0": "|",  # ⏐ vertical line extension
    "\u239c": "|",  # ⎜ left parenthesis extension
    "\u239f": "|",  # ⎟ right parenthesis extension
    "\u23bc": "-",  # ⎼ horizontal scan line-7
    "\u23bd": "-",  # ⎽ horizontal scan line-9
    "\u2015": "-",  # ― horizontal bar
    "\ufe63": "-",  # ﹣ small hyphen-minus
    "\uff0d": "-",  # － fullwidth hyphen-minus
    "\u2010": "-",  # ‐ hyphen
    "\u2043": "-",  # ⁃ hyphen bullet
    "\ufe6b": "@",  # ﹫ small commercial at
    "\uff20": "@",  # ＠ fullwidth commercial at
    "\ufe69": "$",  # ﹩ small dollar sign
    "\uff04": "$",  # ＄ fullwidth dollar sign
    "\u01c3": "!",  # ǃ latin letter retroflex click
    "\ufe15": "!",  # ︕ presentation form for vertical exclamation mark
    "\ufe57": "!",  # ﹗ small exclamation mark
    "\uff01": "!",  # ！ fullwidth exclamation mark
    "\ufe5f": "#",  # ﹟ small number sign
    "\uff03": "#",  # ＃ fullwidth number sign
    "\ufe6a": "%",  # ﹪ small percent sign
    "\uff05": "%",  # ％ fullwidth percent sign
    "\ufe60": "&",  # ﹠ small ampersand
    "\uff06": "&",  # ＆ fullwidth ampersand
    "\u201a": ",",  # ‚ single low-9 quotation mark
    "\u0326": ",",  # combining comma below
    "\ufe50": ",",  # ﹐ small comma
    "\ufe51": ",",  # ﹑ small ideographic comma
    "\uff0c": ",",  # ， fullwidth comma
    "\uff64": ",",  # ､ halfwidth ideographic comma
    "\u2768": "(",  # ❨ medium left parenthesis ornament
    "\u276a": "(",  # ❪ medium flattened left parenthesis ornament
    "\ufe59": "(",  # ﹙ small left parenthesis
    "\uff08": "(",  # （ fullwidth left parenthesis
    "\u27ee": "(",  # ⟮ mathematical left flattened parenthesis
    "\u2985": "(",  # ⦅ left white parenthesis
    "\u2769": ")",  # ❩ medium right parenthesis ornament
    "\u276b": ")",  # ❫ medium flattened right parenthesis ornament
    "\ufe5a": ")",  # ﹚ small right parenthesis
    "\uff09": ")",  # ） fullwidth right parenthesis
    "\u27ef": ")",  # ⟯ mathematical right flattened parenthesis
    "\u2986": ")",  # ⦆ right white parenthesis
    "\u204e": "*",  # ⁎ low asterisk
    "\u2217": "*",  # ∗ asterisk operator
    "\u229b": "*",  # ⊛ circled asterisk operator
    "\u2722": "*",  # ✢ four teardrop-spoked asterisk
    "\u2723": "*",  # ✣ four balloon-spoked asterisk
    "\u2724": "*",  # ✤ heavy four balloon-spoked asterisk
    "\u2725": "*",  # ✥ four club-spoked asterisk
    "\u2731": "*",  # ✱ heavy asterisk
    "\u2732": "*",  # ✲ open centre asterisk
    "\u2733": "*",  # ✳ eight spoked asterisk
    "\u273a": "*",  # ✺ sixteen pointed asterisk
    "\u273b": "*",  # ✻ teardrop-spoked asterisk
    "\u273c": "*",  # ✼ open centre teardrop-spoked asterisk
    "\u273d": "*",  # ✽ heavy teardrop-spoked asterisk
    "\u2743": "*",  # ❃ heavy teardrop-spoked pinwheel asterisk
    "\u2749": "*",  # ❉ balloon-spoked asterisk
    "\u274a": "*",  # ❊ eight teardrop-spoked propeller asterisk
    "\u274b": "*",  # ❋ heavy eight teardrop-spoked propeller asterisk
    "\u29c6": "*",  # ⧆ squared asterisk
    "\ufe61": "*",  # ﹡ small asterisk
    "\uff0a": "*",  # ＊ fullwidth asterisk
    "\u02d6": "+",  # ˖ modifier letter plus sign
    "\ufe62": "+",  # ﹢ small plus sign
    "\uff0b": "+",  # ＋ fullwidth plus sign
    "\u3002": ".",  # 。 ideographic full stop
    "\ufe52": ".",  # ﹒ small full stop
    "\uff0e": ".",  # ． fullwidth full stop
    "\uff61": ".",  # ｡ halfwidth ideographic full stop
    "\uff10": "0",  # ０ fullwidth digit zero
    "\uff11": "1",  # １ fullwidth digit one
    "\uff12": "2",  # ２ fullwidth digit two
    "\uff13": "3",  # ３ fullwidth digit three
    "\uff14": "4",  # ４ fullwidth digit four
    "\uff15": "5",  # ５ fullwidth digit five
    "\uff16": "6",  # ６ fullwidth digit six
    "\uff17": "7",  # ７ fullwidth digit seven
    "\uff18": "8",  # ８ fullwidth digit eight
    "\uff19": "9",  # ９ fullwidth digit nine
    "\u02d0": ":",  # ː modifier letter triangular colon
    "\u02f8": ":",  # ˸ modifier letter raised colon
    "\u2982": ":",  # ⦂ z notation type colon
    "\ua789": ":",  # ꞉ modifier letter colon
    "\ufe13": ":",  # ︓ presentation form for vertical colon
    "\uff1a": ":",  # ： fullwidth colon
    "\u204f": ";",  # ⁏ reversed semicolon
    "\ufe14": ";",  # ︔ presentation form for vertical semicolon
    "\ufe54": ";",  # ﹔ small semicolon
    "\uff1b": ";",  # ； fullwidth semicolon
    "\ufe64": "<",  # ﹤ small less-than sign
    "\uff1c": "<",  # ＜ fullwidth less-than sign
    "\u0347": "=",  # combining equals sign below
    "\ua78a": "=",  # ꞊ modifier letter short equals sign
    "\ufe66": "=",  # ﹦ small equals sign
    "\uff1d": "=",  # ＝ fullwidth equals sign
    "\ufe65": ">",  # ﹥ small greater-than sign
    "\uff1e": ">",  # ＞ fullwidth greater-than sign
    "\ufe16": "?",  # ︖ presentation form for vertical question mark
    "\ufe56": "?",  # ﹖ small question mark
    "\uff1f": "?",  # ？ fullwidth question mark
    "\uff21": "A",  # Ａ fullwidth latin capital letter a
    "\u1d00": "A",  # ᴀ latin letter small capital a
    "\uff22": "B",  # Ｂ fullwidth latin capital letter b
    "\u0299": "B",  # ʙ latin letter small capital b
    "\uff23": "C",  # Ｃ fullwidth latin capital letter c
    "\u1d04": "C",  # ᴄ latin letter small capital c
    "\uff24": "D",  # Ｄ fullwidth latin capital letter d
    "\u1d05": "D",  # ᴅ latin letter small capital d
    "\uff25": "E",  # Ｅ fullwidth latin capital letter e
    "\u1d07": "E",  # ᴇ latin letter small capital e
    "\uff26": "F",  # Ｆ fullwidth latin capital letter f
    "\ua730": "F",  # ꜰ latin letter small capital f
    "\uff27": "G",  # Ｇ fullwidth latin capital letter g
    "\u0262": "G",  # ɢ latin letter small capital g
    "\uff28": "H",  # Ｈ fullwidth latin capital letter h
    "\u029c": "H",  # ʜ latin letter small capital h
    "\uff29": "I",  # Ｉ fullwidth latin capital letter i
    "\u026a": "I",  # ɪ latin letter small capital i
    "\uff2a": "J",  # Ｊ fullwidth latin capital letter j
    "\u1d0a": "J",  # ᴊ latin letter small capital j
    "\uff2b": "K",  # Ｋ fullwidth latin capital letter k
    "\u1d0b": "K",  # ᴋ latin letter small capital k
    "\uff2c": "L",  # Ｌ fullwidth latin capital letter l
    "\u029f": "L",  # ʟ latin letter small capital l
    "\uff2d": "M",  # Ｍ fullwidth latin capital letter m
    "\u1d0d": "M",  # ᴍ latin letter small capital m
    "\uff2e": "N",  # Ｎ fullwidth latin capital letter n
    "\u0274": "N",  # ɴ latin letter small capital n
    "\uff2f": "O",  # Ｏ fullwidth latin capital letter o
    "\u1d0f": "O",  # ᴏ latin letter small capital o
    "\uff30": "P",  # Ｐ fullwidth latin capital letter p
    "\u1d18": "P",  # ᴘ latin letter small capital p
    "\uff31": "Q",  # Ｑ fullwidth latin capital letter q
    "\uff32": "R",  # Ｒ fullwidth latin capital letter r
    "\u0280": "R",  # ʀ latin letter small capital r
    "\uff33": "S",  # Ｓ fullwidth latin capital letter s
    "\ua731": "S",  # ꜱ latin letter small capital s
    "\uff34": "T",  # Ｔ fullwidth latin capital letter t
    "\u1d1b": "T",  # ᴛ latin letter small capital t
    "\uff35": "U",  # Ｕ fullwidth latin capital letter u
    "\u1d1c": "U",  # ᴜ latin letter small capital u
    "\uff36": "V",  # Ｖ fullwidth latin capital letter v
    "\u1d20": "V",  # ᴠ latin letter small capital v
    "\uff37": "W",  # Ｗ fullwidth latin capital letter w
    "\u1d21": "W",  # ᴡ latin letter small capital w
    "\uff38": "X",  # Ｘ fullwidth latin capital letter x
    "\uff39": "Y",  # Ｙ fullwidth latin capital letter y
    "\u028f": "Y",  # ʏ latin letter small capital y
    "\uff3a": "Z",  # Ｚ fullwidth latin capital letter z
    "\u1d22": "Z",  # ᴢ latin letter small capital z
    "\u02c6": "^",  # ˆ modifier letter circumflex accent
    "\u0302": "^",  # combining circumflex accent
    "\uff3e": "^",  # ＾ fullwidth circumflex accent
    "\u1dcd": "^",  # combining double circumflex above
    "\u2774": "{",  # ❴ medium left curly bracket ornament
    "\ufe5b": "{",  # ﹛ small left curly bracket
    "\uff5b": "{",  # ｛ fullwidth left curly bracket
    "\u2775": "}",  # ❵ medium right curly bracket ornament
    "\ufe5c": "}",  # ﹜ small right curly bracket
    "\uff5d": "}",  # ｝ fullwidth right curly bracket
    "\uff3b": "[",  # ［ fullwidth left square bracket
    "\uff3d": "]",  # ］ fullwidth right square bracket
    "\u02dc": "~",  # ˜ small tilde
    "\u02f7": "~",  # ˷ modifier letter low tilde
    "\u0303": "~",  # combining tilde
    "\u0330": "~",  # combining tilde below
    "\u0334": "~",  # combining tilde overlay
    "\u223c": "~",  # ∼ tilde operator
    "\uff5e": "~",  # ～ fullwidth tilde
    "\u00a0": " ",  # no-break space
    "\u2000": " ",  # en quad
    "\u2002": " ",  # en space
    "\u2003": " ",  # em space
    "\u2004": " ",  # three-per-em space
    "\u2005": " ",  # four-per-em space
    "\u2006": " ",  # six-per-em space
    "\u2007": " ",  # figure space
    "\u2008": " ",  # punctuation space
    "\u2009": " ",  # thin space
    "\u200a": " ",  # hair space
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
    "\u008d": " ",  # reverse line feed
    "\u009f": " ",  # application program command
    "\u0080": " ",  # c1 control 0080
    "\u0090": " ",  # device control string
    "\u009b": " ",  # control sequence introducer
    "\u0010": "",  # data link escape
    "\u0009": " " * 7,  # character tabulation
    "\u0000": "",  # null
    "\u0003": "",  # end of text
    "\u0004": "",  # end of transmission
    "\u0017": "",  # end of transmission block
    "\u0019": "",  # end of medium
    "\u0011": "",  # device control one
    "\u0012": "",  # device control two
    "\u0013": "",  # device control three
    "\u0014": "",  # device control four
    "\u2060": "",  # word joiner
    "\u2017": "_",  # ‗ double low line
    "\u2014": "-",  # — em dash
    "\u2013": "-",  # – en dash
    "\u2039": "<",  # ‹ single left-pointing angle quotation mark
    "\u203a": ">",  # › single right-pointing angle quotation mark
    "\u203c": "!!",  # ‼ double exclamation mark
    "\u2028": " ",  # line separator
    "\u2029": " ",  # paragraph separator
    "\u2026": "...",  # … horizontal ellipsis
    "\u2001": " ",  # em quad
    "\u200b": "",  # zero width space
    "\u3001": ",",  # 、 ideographic comma
    "\ufeff": "",  # zero width no-break space
    "\u2022": "-",  # • bullet
}

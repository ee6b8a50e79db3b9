"""Regenerate the course's text corpus (tlcourse/assets/text/tickets.jsonl): customer messages.

Every message is composed from hand-written phrase lists (written for this course, CC0):
an optional neutral greeting, one *core* sentence that carries the topic, and an optional
closing line. About a fifth of the messages open with a clause about another topic and turn
with "but" ("The parcel came a day early, but you charged me twice") - the topic after the
turn is the label. Cores are written to share few words within a class (paraphrases:
"never turned up" / "still not here" / "courier left it at the wrong door").

Labels: delivery, billing, defect, account, praise.

Splits are made by core sentence: a core (and every message built on it) is in exactly one of
train (60 %), val (10 %), test (30 %), so the test set asks for the *meaning* of phrasings
never seen in training. Exact duplicates (after normalising case, punctuation, spaces) and near
duplicates (word-bigram Jaccard >= 0.5) are removed.

    python scripts/make_text.py          # writes tlcourse/assets/text/tickets.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
from pathlib import Path

LABELS = ("delivery", "billing", "defect", "account", "praise")
SPLIT_SHARES = (("train", 0.6), ("val", 0.1), ("test", 0.3))
RENDERINGS = 6  # messages composed per core sentence (before de-duplication)

ITEMS = """the kettle|my headphones|the sofa|the blender|my order|the parcel with the lamp|the running shoes
|the phone case|the desk chair|the coffee grinder|the winter coat|the printer|my new laptop bag|the rug
|the set of pans|the baby monitor|the electric toothbrush|the garden hose|the bike helmet|the toaster
|the speaker|the jigsaw puzzle|the bookshelf|my daughter's birthday present|the vacuum cleaner|the mattress
|the hair dryer|the smartwatch|the yoga mat|the microwave|the tent|the office lamp|the wall clock
|the camera tripod|the kids' scooter|order 48213|order 77102|the air fryer|the rice cooker|the suitcase"""

GREETINGS = """Hi,|Hello.|Hello there,|Good morning.|Hey team,|Hi folks.|Dear support,|Good afternoon,
|Hi again.|To whom it may concern,|Hey,|Evening all.|Quick message:|Hello, it's Sam here.|Hi, Priya here.
|Morning!|Hello from a long-time customer.|Hi there, hope you're well.|Greetings.|Hello, this is about my order."""

CLOSINGS = """Thanks.|Thank you.|Cheers.|Regards, Ana|Best wishes.|Many thanks, Joe|Kind regards.
|Thanks in advance.|Have a good day.|Ta.|Best, Lena|Speak soon.|All the best.|Thank you for reading."""

REQUESTS = """Can someone look into this?|Please sort this out.|What should I do now?|Please advise.
|I'd appreciate a quick reply.|How do we fix this?|Could you help?|Please get back to me soon.
|Is there anything you can do?|Let me know the next step.|I need this resolved this week.|Any ideas?"""

# One clause per topic that is *fine*, used before "but" in contrast messages.
FINE = {
    "delivery": """The parcel came a day early|Shipping was quick|The courier was lovely
        |It arrived well packed|Delivery was right on time|The box turned up the next morning""",
    "billing": """The price was fair|Checkout was painless|The discount code worked
        |Paying by card was easy|The invoice looked right at first|Your prices are the best around""",
    "defect": """The thing itself works fine|The build quality looks solid|It does what it says
        |It looks exactly like the photos|It works perfectly so far|The quality is great""",
    "account": """Signing up was easy|Your app is nice to use|Logging in used to be simple
        |The website is fast|My profile was set up in a minute|The new site looks great""",
}
# Mild complaints used before "but" in praise messages.
GRIPES = """Delivery took a while|The box was a bit battered|The website is clunky|Checkout was slow
|The app logged me out twice|It cost more than I planned|The manual is confusing|Setup took an hour
|The courier was late|I had to reset my password first"""

# Extra sentences that add detail; per topic (split like the cores) and neutral (any topic).
DETAILS = {
    "delivery": """I've called the courier twice already.|It was meant to be a birthday gift for Friday.
        |The tracking reference is DX4471.|My neighbours haven't seen any van either.|I stayed home from work to receive it.
        |The driver's note says "no safe place".|I live on the top floor, flat 9.|The warehouse says it left days ago.
        |I'm travelling from the 14th.|It's a heavy item, so I can't fetch it myself.|The estimated date was last Monday.
        |The local depot won't answer the phone.|I chose the faster option at checkout.|Last time it took just two days.
        |There's a concierge in my building who can sign.|I've checked with the post office as well.""",
    "billing": """The transaction reference is TX-90215.|My statement shows it clearly.|I have the bank screenshot if needed.
        |It was about forty pounds.|This has left me short until payday.|I used the code SPRING10.
        |The confirmation email says a different amount.|It's on my Visa ending in 0031.|My accountant needs the paperwork.
        |The return label was scanned on the 3rd.|I was told it takes five working days.|My bank says it's your side.
        |I only placed one order that day.|The basket total looked right before I paid.|I've been waiting since the 2nd.
        |It's the annual plan I'm talking about.""",
    "defect": """I followed the manual exactly.|It's only been used a handful of times.|I have photos of the damage.
        |I've tried a different socket and cable.|I kept all the original packaging.|The serial number starts with KX.
        |It happens every single time.|My old one lasted for years.|I cleaned it exactly as instructed.
        |The problem started out of nowhere.|I'd like a replacement rather than a repair.|It's still well within warranty.
        |A friend bought the same one and has the same issue.|It's unsafe to use like this.|Restarting it makes no difference.
        |I've attached a short video.""",
    "account": """I've cleared my cookies and cache.|I've tried on my phone and laptop.|My email is on the usual provider.
        |I did get a text code once, then nothing.|I've checked my spam folder too.|I use a password manager.
        |It worked fine until last week.|The error message just says "something went wrong".|I've had the account since 2016.
        |I'm worried about my saved card details.|I'd rather not create a new profile.|My username is the same as my email.
        |I'm using the latest version of the app.|I reset my router in case it was that.|Nobody else has my details.
        |I got a strange security alert email.""",
    "praise": """I'll be back for more.|Already told my sister about you.|Thanks to everyone involved.
        |It's on my desk and I smile every time.|Recommended to my whole office.|Happy to leave a review too.
        |Worth the wait.|Such a nice change from big shops.|I'm ordering a second one as a gift.
        |The whole family uses it now.|Keep up the fine work.|It has made a real difference at home.
        |We were genuinely impressed.|My friends keep asking where I got it.|You've restored my faith in online shopping.
        |Bravo to your design team.""",
}
NEUTRAL_DETAILS = """I've been a customer for years.|This is my second message about it.|Sorry for the long email.
|My order number is in the subject line.|I ordered on your website last month.|I'm writing from my work address.
|You can reach me on my mobile.|I bought it in your spring sale.|English isn't my first language, sorry.
|I'm not great with computers.|My partner placed the order for me.|It's my first time buying from you."""

CORES = {
    "delivery": """{item} never turned up.|{item} is still not here after two weeks.
|The tracking has said "out for delivery" since Tuesday.|The courier left {item} at the wrong house.
|Your driver says he knocked, but nobody came to my door and I was home all day.
|{item} was dumped in the rain on my doorstep and the cardboard is soaked.
|It went to my old address even though I updated it.|Where is my package?
|The shipment seems to be stuck at the depot in Leeds.|I was told next-day shipping; it's been nine days.
|The van came while I was at work and took it back again.|{item} was handed to a neighbour I have never met.
|Your tracking link just shows an error page.|Half of my order arrived, the other half is missing.
|{item} arrived a month after the estimated date.|The parcel locker code you sent does not open anything.
|Can I change the drop-off address for {item}?|The postman says there is no such parcel.
|{item} was marked as delivered, but it's nowhere to be found.|Is express shipping available to Ireland?
|I paid for a weekend slot and nobody showed up on Saturday.|My item has been "in transit" for three weeks.
|The carrier lost my box somewhere between warehouses.|It was sent to a pickup point forty miles away.
|Could you hold {item} at the depot until I'm back from holiday?|The delivery guy threw it over the fence.
|Nothing arrived yesterday despite the text saying it would.|The label had the wrong postcode on it.
|I can't find a way to reschedule the drop-off.|The box came back to you as undeliverable, apparently.
|Customs has been holding {item} for ages.|How long does shipping to Canada usually take?
|The estimated arrival keeps moving back a day.|Only an empty envelope reached me.
|The order shows dispatched, yet the courier has no record of it.|{item} is sitting in a sorting office somewhere.
|I requested signature on receipt and it was left unattended.|Which courier do you use for large furniture?
|The driver refused to carry {item} upstairs.|The tracking number belongs to someone else's order.
|My parcel went on a tour of three cities and came back to the depot.|It's been "awaiting collection" for ten days.
|The flat number was left off the label, so it bounced.|No one has turned up in the four-hour window you gave.
|Can you deliver to my office instead?|I was promised it before Christmas and it's now January.
|{item} was left in the bin store by mistake.|The courier app shows a photo of a door that isn't mine.
|Is there a way to pick up {item} from your warehouse myself?|Please stop sending it to my former flat.
|It was delivered to the shop next door and they closed for the week.|My order split into two boxes and only one came.
|The courier said the road was closed, which it isn't.|It left your warehouse but never reached the local hub.
|Shipping still says pending after I paid for priority.|I've been waiting in all week and seen no van.""",
    "billing": """You charged me twice for {item}.|My card was billed but the order was cancelled.
|The invoice shows the wrong VAT number.|Where is my refund? It's been a month.
|I was charged a fee that nobody mentioned at checkout.|The discount code didn't come off the total.
|My bank shows a payment to you I don't recognise.|Can I split the cost across two cards?
|The subscription renewed even though I cancelled it in March.|Please send me a receipt for {item}; I need it for expenses.
|I was promised money back for {item} and I haven't seen a penny.|PayPal says the transaction failed, but the money left my account.
|Why did the price go up between the basket and the payment page?|The voucher from my birthday email was rejected.
|I'd like to pay in instalments; is that possible?|The amount taken doesn't match the confirmation email.
|My credit note has expired before I could use it.|The exchange rate you used seems wrong.
|I returned {item} weeks ago and the credit still isn't back.|You took a deposit and never released it.
|Can I get an invoice in my company's name?|The gift card balance shows zero, but I never spent it.
|A pre-authorisation of two hundred euros is still pending.|I was overcharged for postage.
|Apple Pay keeps declining, though my card is fine elsewhere.|The monthly plan costs more than advertised.
|I want a partial reimbursement since part of the order was missing.|There's a mysterious "service charge" on my statement.
|Loyalty points were not deducted from what I paid.|My direct debit was taken on the wrong date.
|Could you refund the shipping cost, as promised?|The sale price wasn't applied to {item}.
|I was billed for a premium membership I never signed up for.|The tax on my order looks far too high.
|Why have I been charged in dollars when I'm in the UK?|The cashback offer never paid out.
|The refund went to a card I cancelled last year.|I'd like my money back, not store credit.
|The price match you agreed hasn't been honoured.|Can you resend the payment link? The old one expired.
|The order total doubled after I added a coupon.|Klarna says you haven't confirmed my return, so they keep billing me.
|I was charged for {item} even though it was out of stock.|The trial was supposed to be free for thirty days.
|How do I update the card you take the subscription from?|The statement lists three payments for one purchase.
|A late fee appeared although I paid on time.|Please cancel the charge for the extended warranty.
|Your checkout accepted my coupon and then charged full price.|I'm still owed twelve pounds from the last return.
|Can you confirm the money for {item} has been returned?|My bank flagged your payment as suspicious and froze my card.""",
    "defect": """{item} stopped working after three days.|{item} arrived with a cracked lid.
|The screen flickers and then goes black.|The zip broke the first time I used it.
|{item} makes a horrible grinding noise.|It won't turn on at all, even fully charged.
|One of the legs is shorter, so it wobbles.|The battery dies within an hour.
|{item} smells of burning plastic when I use it.|The stitching on the seam is coming apart already.
|The left earbud has no sound.|There's a dent on the side that was not there in the photos.
|The colour is completely different from the picture.|It leaks water all over the counter.
|The handle snapped off in my hand.|{item} is missing two screws, so I can't assemble it.
|The buttons are stuck and don't respond.|It overheats and shuts itself down.
|The fabric started pilling after one wash.|The lid doesn't close properly.
|Bluetooth keeps disconnecting every few minutes.|The motor sounds like it's about to explode.
|{item} is a size smaller than the chart says.|The paint is peeling off already.
|The charger that came with it doesn't fit the socket.|The display shows random lines.
|It rattles as if something inside is loose.|The wheels jam every few metres.
|{item} came with a part from a different model.|The glass shattered when I poured hot water in.
|The timer resets itself halfway through.|The sole of one shoe is coming unglued.
|The instructions are for a different product entirely.|The fan spins but no air comes out.
|It tripped the fuse in my kitchen twice.|The seams let the rain straight through.
|The speaker crackles at any volume.|{item} broke within the first week.
|The plug is bent and sparks when inserted.|The drawer won't slide; the runner is warped.
|It only heats on one side.|The touch panel ignores my finger half the time.
|The strap broke off and the watch fell onto the pavement.|The mattress has a sagging dip after a fortnight.
|The inflatable seam leaks overnight.|The non-stick coating is flaking into our food.
|The camera mount is cracked, so it tilts on its own.|The zipper teeth don't line up.
|It vibrates so much it walks across the table.|{item} is scratched all over, clearly used before.
|The hinge squeaks and now it won't stay open.|My unit gives error code E4 every morning.""",
    "account": """I can't log in to my account.|The password reset email never arrives.
|Please delete my account and all my data.|Someone changed my email address without my permission.
|I'm locked out after too many attempts.|How do I change the name on my profile?
|The two-factor code is never accepted.|I have two accounts and want to merge them.
|My saved addresses have disappeared.|I think my account was hacked; there are orders I didn't make.
|The app keeps signing me out.|How can I unsubscribe from your newsletters?
|I no longer have access to the phone number linked to my login.|I want to download all the data you hold about me.
|The verification link says it has expired.|My wish list was wiped after the update.
|The site says my email is already registered, but I never signed up.|I forgot which email I used to register.
|Can I turn off the marketing texts?|My loyalty card isn't linked to my online profile.
|The order history page is empty.|I'd like to change my username.
|The login page just spins forever.|Please remove my old card from my saved details.
|My account shows someone else's name.|Your captcha rejects me every time.
|Signing in with Google gives an error.|I changed my password and now neither the old nor the new one works.
|How do I add my partner to the family plan?|I never got the activation email.
|Why was my account suspended?|I need to update the phone number on file.
|The security question answers don't match, though I'm sure of them.|I'd like to close my membership and stop all emails.
|My profile photo won't upload.|Notifications are going to an inbox I no longer use.
|The app asks me to verify my identity in a loop.|Please stop sharing my details with partners.
|I get "session expired" every few seconds.|Can I have my account reactivated?
|My student discount status vanished from my profile.|Someone is using my login from another country.
|I can't find where to edit my date of birth.|The passkey option won't set up on my phone.
|The page to change my password is blank.|My linked social account was disconnected.
|How do I stop the app tracking my location?|I'd like a copy of my personal data under GDPR.
|My preferences reset every time I sign in.|The account settings link leads to a 404.""",
    "praise": """{item} is absolutely brilliant.|Best purchase I've made all year.
|I can't say a single bad word about it.|You've won a customer for life.
|No complaints whatsoever - it's perfect.|{item} exceeded every expectation I had.
|Honestly, not bad at all, and for that price, amazing.|My kids adore it.
|Your team went above and beyond for me.|I've already recommended you to three friends.
|{item} feels far more expensive than it was.|Five stars, would buy again tomorrow.
|What a lovely surprise to find a handwritten note inside.|It works like a dream.
|The lady on the phone was so kind and patient.|I was sceptical, but I'm thoroughly impressed.
|I use it every single day and love it.|{item} is even nicer in person.
|Just wanted to say thank you for the great service.|It's made my mornings so much easier.
|Everything about this order was a pleasure.|Top quality, genuinely delighted.
|My mum was over the moon with her present.|Couldn't be happier with how it turned out.
|This is the third one I've bought and they never disappoint.|It's sturdy, stylish and a joy to use.
|Really impressed by how you handled my question.|I'll definitely be shopping here again.
|Well done on the new range; it's fantastic.|{item} has held up beautifully for a year now.
|The design is gorgeous and it's so simple to use.|You made a stressful week a little easier, thanks.
|It's everything the reviews promised.|Whoever packed it clearly took real care.
|A fantastic little gadget.|I'm not usually one to write in, but this deserves praise.
|Great value and it really lasts.|Superb craftsmanship, you can tell.
|My husband, who hates everything, loves it.|It's not flashy, but it's perfect for us.
|Thank you for fixing things so quickly last time.|We've had nothing but compliments on it.
|Outstanding - exactly what I needed.|Lovely people, lovely products.
|{item} turned out to be worth every penny.|I'm genuinely chuffed with it.
|The quality puts the big brands to shame.|It's quiet, fast and beautifully made.
|I keep telling everyone about your shop.|Absolutely thrilled; keep doing what you're doing.""",
}


def split_list(text: str) -> list[str]:
    """``"a|b\\n|c"`` -> ``["a", "b", "c"]`` (phrases separated by ``|``)."""
    return [p.strip() for p in text.replace("\n", " ").split("|") if p.strip()]


def normalise(text: str) -> str:
    """Lower case, letters and digits only, single spaces (for exact-duplicate checks)."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def bigrams(text: str) -> set[tuple[str, str]]:
    words = normalise(text).split()
    return set(zip(words, words[1:], strict=False)) or {(w, "") for w in words}


def render(core: str, label: str, details: dict[str, list[str]], rng: random.Random) -> str:
    """One message around ``core``: greeting?, contrast clause?, core, detail?, closing?."""
    sentence = core.replace("{item}", rng.choice(split_list(ITEMS)))
    sentence = sentence[0].upper() + sentence[1:]
    if rng.random() < 0.22:
        others = [t for t in FINE if t != label]
        lead = (
            rng.choice(split_list(GRIPES))
            if label == "praise"
            else rng.choice(split_list(FINE[rng.choice(others)]))
        )
        keep_case = sentence.split()[0] in ("I", "I'm", "I've", "I'd")
        sentence = f"{lead}, but {sentence if keep_case else sentence[0].lower() + sentence[1:]}"
    parts = [rng.choice(split_list(GREETINGS))] if rng.random() < 0.5 else []
    parts.append(sentence)
    if rng.random() < 0.7:
        own = rng.random() < 0.7
        parts.append(rng.choice(details[label] if own else split_list(NEUTRAL_DETAILS)))
    closings = split_list(CLOSINGS) + ([] if label == "praise" else split_list(REQUESTS))
    if rng.random() < 0.6:
        parts.append(rng.choice(closings))
    return " ".join(parts)


def build(seed: int = 0) -> list[dict]:
    """The whole corpus: ``[{"id", "text", "label", "split"}]``, de-duplicated, split by core."""
    rng, rows = random.Random(seed), []
    for label in LABELS:
        cores, details = (
            split_shares(split_list(CORES[label]), rng),
            split_shares(split_list(DETAILS[label]), rng),
        )
        for split, _ in SPLIT_SHARES:
            for core in cores[split]:
                rows += [
                    {
                        "text": render(core, label, {label: details[split]}, rng),
                        "label": label,
                        "split": split,
                    }
                    for _ in range(RENDERINGS)
                ]
    rows = deduplicate(rows)
    rng.shuffle(rows)
    return [{"id": i, **row} for i, row in enumerate(rows)]


def split_shares(phrases: list[str], rng: random.Random) -> dict[str, list[str]]:
    """Shuffle ``phrases`` and deal them into the splits by :data:`SPLIT_SHARES`."""
    phrases = phrases[:]
    rng.shuffle(phrases)
    cut1 = round(SPLIT_SHARES[0][1] * len(phrases))
    cut2 = cut1 + max(1, round(SPLIT_SHARES[1][1] * len(phrases)))
    return {"train": phrases[:cut1], "val": phrases[cut1:cut2], "test": phrases[cut2:]}


def deduplicate(rows: list[dict], threshold: float = 0.5) -> list[dict]:
    """Drop exact duplicates and near duplicates (word-bigram Jaccard >= ``threshold``)."""
    kept: list[dict] = []
    seen: set[str] = set()
    grams: list[set] = []
    for row in rows:
        key, g = normalise(row["text"]), bigrams(row["text"])
        if key in seen or any(len(g & h) / len(g | h) >= threshold for h in grams):
            continue
        seen.add(key)
        grams.append(g)
        kept.append(row)
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "tlcourse/assets/text/tickets.jsonl",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = build(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    os.replace(tmp, args.out)
    counts = {s: sum(r["split"] == s for r in rows) for s, _ in SPLIT_SHARES}
    print(f"wrote {len(rows)} messages to {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

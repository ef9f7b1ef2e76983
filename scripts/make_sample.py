"""Write the sample data in data/sample/ (committed; re-run to regenerate byte-identically).

The questions are composed from a small bilingual concept bank written for this project: 15 topics x
5 concepts, each with a name and a one-sentence definition in Traditional Chinese and English. Five
question forms (factual, conceptual, analytical, comparative, evaluative) turn them into questions whose
correct option really is correct, and whose reasoning chain says why each option is or is not.

Files, in the formats users have (see src/mcqflow/ingest.py):
  train.csv   Kaggle #2/#3 reasoning format (題目,選項A..D,正確答案,推理正確答案) + 主題,難度,題型
  dev.csv     Kaggle #1 train format (ID,question,option_A..D,answer) with messy answers and one NaN
  test.csv    Kaggle test format (ID,Question,Option A..D) with the real files' quirks, no answers
  en/*.jsonl  English counterparts as canonical records, same ids

Usage: python scripts/make_sample.py [--out data/sample]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

import opencc

from mcqflow.reasoning import build_chain

# (topic zh, topic en, [(name zh, name en, definition zh, definition en), ...])
BANK = [
    (
        "科技倫理",
        "technology ethics",
        [
            (
                "演算法偏見",
                "algorithmic bias",
                "自動化系統因訓練資料或設計而對特定群體產生系統性不公平的結果",
                "systematically unfair outcomes for some groups produced by automated systems because of their data or design",
            ),
            (
                "知情同意",
                "informed consent",
                "當事人在充分了解風險與用途後，自願同意其資料或本人參與研究",
                "a person freely agreeing to the use of their data or their participation after understanding the risks and purposes",
            ),
            (
                "數位落差",
                "the digital divide",
                "不同群體在取得與使用資訊科技方面存在的差距",
                "the gap between groups in access to and use of information technology",
            ),
            (
                "可解釋性",
                "explainability",
                "人工智慧系統的決策過程能被人類理解與檢驗的程度",
                "how far people can understand and check the decisions of an AI system",
            ),
            (
                "監控資本主義",
                "surveillance capitalism",
                "企業大規模蒐集使用者行為資料並轉化為商業利益的模式",
                "a business model that collects user behaviour data at scale and turns it into profit",
            ),
        ],
    ),
    (
        "經濟發展",
        "economic development",
        [
            (
                "通貨膨脹",
                "inflation",
                "一段時間內整體物價水準持續上升，使貨幣購買力下降",
                "a sustained rise in the general price level that lowers the purchasing power of money",
            ),
            (
                "國內生產毛額",
                "gross domestic product",
                "一國在一定期間內生產的最終商品與服務的市場總值",
                "the total market value of final goods and services a country produces in a period",
            ),
            (
                "產業升級",
                "industrial upgrading",
                "經濟結構由低附加價值產業轉向高技術、高附加價值產業的過程",
                "an economy shifting from low value-added industries to high-tech, high value-added ones",
            ),
            (
                "基尼係數",
                "the Gini coefficient",
                "衡量所得或財富分配不平等程度的統計指標",
                "a statistic that measures how unequally income or wealth is distributed",
            ),
            (
                "比較利益",
                "comparative advantage",
                "一國以較低機會成本生產某種商品，因而專業化生產並進行貿易",
                "a country producing a good at lower opportunity cost, so it specialises and trades",
            ),
        ],
    ),
    (
        "環境保護",
        "environmental protection",
        [
            (
                "碳中和",
                "carbon neutrality",
                "排放的溫室氣體與移除或抵銷的數量相等，使淨排放為零",
                "greenhouse gases emitted equal those removed or offset, so net emissions are zero",
            ),
            (
                "生物多樣性",
                "biodiversity",
                "一個地區內物種、基因與生態系統的豐富程度",
                "the variety of species, genes and ecosystems in an area",
            ),
            (
                "永續發展",
                "sustainable development",
                "滿足當代需求，同時不損害後代滿足其需求的能力",
                "meeting present needs without compromising the ability of future generations to meet theirs",
            ),
            (
                "污染者付費原則",
                "the polluter pays principle",
                "造成污染的一方應負擔防治與清除污染的成本",
                "whoever causes pollution bears the cost of preventing and cleaning it up",
            ),
            (
                "循環經濟",
                "the circular economy",
                "透過再利用、修復與回收，使資源盡可能長時間留在經濟體系中",
                "keeping resources in use for as long as possible through reuse, repair and recycling",
            ),
        ],
    ),
    (
        "教育體系",
        "the education system",
        [
            (
                "教育公平",
                "educational equity",
                "不論家庭背景，每個學生都能獲得適合其需要的教育資源與機會",
                "every student, whatever their background, getting the resources and opportunities they need",
            ),
            (
                "終身學習",
                "lifelong learning",
                "個人在一生各個階段持續進行的學習活動",
                "learning that a person keeps up through every stage of life",
            ),
            (
                "素養導向教學",
                "competency-based teaching",
                "強調將知識、技能與態度整合應用於真實情境的教學方式",
                "teaching that stresses applying knowledge, skills and attitudes together in real situations",
            ),
            (
                "學術自由",
                "academic freedom",
                "教師與研究者在教學與研究上不受不當干預的自由",
                "the freedom of teachers and researchers to teach and research without undue interference",
            ),
            (
                "標準化測驗",
                "standardised testing",
                "以統一的題目、施測程序與計分方式評量學生的考試",
                "exams given and scored in the same way for every student",
            ),
        ],
    ),
    (
        "網絡安全",
        "cybersecurity",
        [
            (
                "網路釣魚",
                "phishing",
                "冒充可信來源誘使使用者洩漏帳號密碼等敏感資訊的手法",
                "posing as a trusted source to trick users into revealing passwords or other sensitive data",
            ),
            (
                "端對端加密",
                "end-to-end encryption",
                "只有通訊雙方能解讀訊息內容，中間的服務提供者無法讀取",
                "only the two parties can read the messages, not the service in between",
            ),
            (
                "多因素驗證",
                "multi-factor authentication",
                "登入時要求兩種以上不同類型的身分證明",
                "a login that asks for two or more different kinds of proof of identity",
            ),
            (
                "勒索軟體",
                "ransomware",
                "加密受害者的檔案並要求支付贖金才予以解鎖的惡意程式",
                "malware that encrypts a victim's files and demands payment to unlock them",
            ),
            (
                "零信任架構",
                "zero-trust architecture",
                "不預設信任任何使用者或裝置，每一次存取都必須驗證",
                "trusting no user or device by default and verifying every single access",
            ),
        ],
    ),
    (
        "法律制度",
        "the legal system",
        [
            (
                "無罪推定",
                "the presumption of innocence",
                "被告在依法證明有罪之前，應被視為無罪",
                "a defendant is treated as innocent until proven guilty according to law",
            ),
            (
                "罪刑法定",
                "the principle of legality",
                "行為是否構成犯罪及其刑罰，必須由事先公布的法律明文規定",
                "conduct is a crime, and punishable, only if a law published beforehand says so",
            ),
            (
                "司法獨立",
                "judicial independence",
                "法官依據法律獨立審判，不受行政或立法機關干涉",
                "judges decide cases by law, free from interference by the executive or legislature",
            ),
            (
                "比例原則",
                "the principle of proportionality",
                "公權力限制人民權利時，手段須適當、必要且與目的相稱",
                "when the state limits rights, the means must be suitable, necessary and in proportion to the aim",
            ),
            (
                "正當法律程序",
                "due process",
                "國家剝奪人民生命、自由或財產之前，必須遵循公正的法定程序",
                "the state following fair legal procedures before taking anyone's life, liberty or property",
            ),
        ],
    ),
    (
        "人權議題",
        "human rights",
        [
            (
                "普世人權",
                "universal human rights",
                "每個人僅因身為人即享有、不分國籍與身分的基本權利",
                "basic rights everyone holds simply by being human, whatever their nationality or status",
            ),
            (
                "不歧視原則",
                "non-discrimination",
                "不得因種族、性別、宗教等特徵而給予不合理的差別待遇",
                "no unjustified difference in treatment on grounds such as race, sex or religion",
            ),
            (
                "隱私權",
                "the right to privacy",
                "個人的私人生活與個人資料免受任意干涉的權利",
                "the right to have one's private life and personal data free from arbitrary interference",
            ),
            (
                "集會自由",
                "freedom of assembly",
                "人民和平聚集以表達共同意見的權利",
                "the right of people to gather peacefully to express shared views",
            ),
            (
                "社會權",
                "social rights",
                "要求國家保障教育、醫療、住房等基本生活條件的權利",
                "rights that ask the state to secure basic conditions such as education, health care and housing",
            ),
        ],
    ),
    (
        "政治治理",
        "political governance",
        [
            (
                "權力分立",
                "the separation of powers",
                "將立法、行政、司法權分屬不同機關以互相制衡",
                "dividing legislative, executive and judicial power among separate bodies that check one another",
            ),
            (
                "問責制",
                "accountability",
                "公職人員須為其決策與行為向公眾或監督機關負責",
                "officials answering for their decisions and conduct to the public or to oversight bodies",
            ),
            (
                "政府透明度",
                "government transparency",
                "政府公開其決策過程、預算與資訊，讓公眾得以監督",
                "a government opening its decisions, budget and information to public scrutiny",
            ),
            (
                "地方分權",
                "decentralisation",
                "將部分決策權力由中央移轉至地方政府",
                "moving some decision-making power from central to local government",
            ),
            (
                "公民參與",
                "civic participation",
                "民眾透過投票、諮詢、公聽會等方式參與公共事務",
                "citizens taking part in public affairs through voting, consultations, hearings and the like",
            ),
        ],
    ),
    (
        "言論自由",
        "freedom of expression",
        [
            (
                "事前審查",
                "prior restraint",
                "在言論發表之前由政府加以審查或禁止",
                "the government reviewing or banning speech before it is published",
            ),
            (
                "仇恨言論",
                "hate speech",
                "基於種族、宗教等身分煽動對特定群體敵意的言論",
                "speech that stirs up hostility against a group because of an identity such as race or religion",
            ),
            (
                "新聞自由",
                "press freedom",
                "媒體蒐集與報導資訊而不受政府不當控制的自由",
                "the freedom of the media to gather and report information without undue state control",
            ),
            (
                "寒蟬效應",
                "the chilling effect",
                "人們因擔心受罰而自我限制原本合法的言論",
                "people holding back lawful speech for fear of punishment",
            ),
            (
                "思想市場",
                "the marketplace of ideas",
                "認為各種觀點公開競爭，有助於社會辨明真理的理念",
                "the idea that open competition among views helps a society find the truth",
            ),
        ],
    ),
    (
        "宗教文化",
        "religion and culture",
        [
            (
                "宗教自由",
                "freedom of religion",
                "個人信仰、改變或不信仰宗教，以及實踐其信仰的自由",
                "the freedom to hold, change or not hold a religion, and to practise it",
            ),
            (
                "政教分離",
                "the separation of church and state",
                "國家不設立國教，宗教團體也不掌握國家權力",
                "the state has no official religion and religious bodies hold no state power",
            ),
            (
                "文化多元主義",
                "multiculturalism",
                "承認並尊重社會中多種文化群體並存的價值",
                "recognising and respecting the coexistence of many cultural groups in a society",
            ),
            (
                "宗教對話",
                "interfaith dialogue",
                "不同宗教信仰者之間為增進理解而進行的交流",
                "exchanges between people of different faiths to build understanding",
            ),
            (
                "文化遺產保存",
                "cultural heritage preservation",
                "保護具有歷史、藝術或社會價值的有形與無形文化資產",
                "protecting tangible and intangible heritage of historical, artistic or social value",
            ),
        ],
    ),
    (
        "民族關係",
        "ethnic relations",
        [
            (
                "少數民族權利",
                "minority rights",
                "保障少數群體保存其語言、文化並參與公共生活的權利",
                "rights that let minority groups keep their language and culture and take part in public life",
            ),
            (
                "族群融合",
                "ethnic integration",
                "不同族群在保留自身特色的同時，共同參與社會生活的過程",
                "groups sharing in social life together while keeping their own identities",
            ),
            (
                "刻板印象",
                "stereotyping",
                "對某一群體成員過度簡化且概括的固定看法",
                "an oversimplified, generalised fixed belief about the members of a group",
            ),
            (
                "同化政策",
                "assimilation policy",
                "要求少數群體放棄原有文化而採納主流文化的政策",
                "a policy that requires minorities to give up their culture for the majority's",
            ),
            (
                "平權措施",
                "affirmative action",
                "為改善歷史上弱勢群體處境而採取的積極優惠措施",
                "measures that favour historically disadvantaged groups to improve their position",
            ),
        ],
    ),
    (
        "地區自治",
        "regional autonomy",
        [
            (
                "自治權",
                "autonomy",
                "特定地區依法自行管理其內部事務的權力",
                "the legal power of a region to run its own internal affairs",
            ),
            (
                "聯邦制",
                "federalism",
                "主權由中央政府與各成員邦依憲法分享的國家結構",
                "a state in which sovereignty is shared under the constitution between the centre and member states",
            ),
            (
                "單一制",
                "the unitary state",
                "主權集中於中央政府，地方權力來自中央授予的國家結構",
                "a state in which sovereignty lies with the centre and local power is delegated by it",
            ),
            (
                "輔助性原則",
                "subsidiarity",
                "公共事務應盡可能由最接近民眾的層級處理",
                "public matters are handled by the level closest to the people wherever possible",
            ),
            (
                "財政分權",
                "fiscal decentralisation",
                "地方政府擁有自行徵稅與支配預算的權力",
                "local governments having the power to raise their own taxes and spend their own budgets",
            ),
        ],
    ),
    (
        "國際關係",
        "international relations",
        [
            (
                "國家主權",
                "state sovereignty",
                "國家在其領土內擁有最高且排他的統治權",
                "a state's supreme and exclusive authority over its own territory",
            ),
            (
                "多邊主義",
                "multilateralism",
                "多個國家透過國際組織與協議共同處理問題的方式",
                "several states tackling problems together through international bodies and agreements",
            ),
            (
                "軟實力",
                "soft power",
                "以文化、價值觀與政策的吸引力而非強制來影響他國的能力",
                "the ability to influence others through the appeal of culture, values and policy rather than force",
            ),
            (
                "權力平衡",
                "the balance of power",
                "國家之間力量大致均衡，以防止單一國家獨霸的狀態",
                "a rough equilibrium among states that stops any single one from dominating",
            ),
            (
                "集體安全",
                "collective security",
                "各國承諾共同回應對其中任何一個成員的侵略",
                "states pledging to respond together to aggression against any one of them",
            ),
        ],
    ),
    (
        "社會問題",
        "social issues",
        [
            (
                "人口老化",
                "population ageing",
                "老年人口占總人口的比例持續上升的現象",
                "the share of older people in the population rising steadily",
            ),
            (
                "貧富差距",
                "the wealth gap",
                "社會中高所得與低所得群體之間的經濟差距",
                "the economic gap between high-income and low-income groups in a society",
            ),
            (
                "社會流動",
                "social mobility",
                "個人或家庭在社會階層之間上下移動的可能性",
                "the chance of people or families moving up or down between social strata",
            ),
            (
                "社會安全網",
                "the social safety net",
                "為失業、疾病、貧困者提供基本保障的公共制度",
                "public schemes that give basic protection to the unemployed, the sick and the poor",
            ),
            (
                "都市化",
                "urbanisation",
                "人口由鄉村向城市集中的過程",
                "the movement of the population from the countryside into cities",
            ),
        ],
    ),
    (
        "歷史事件",
        "historical events",
        [
            (
                "工業革命",
                "the Industrial Revolution",
                "十八世紀起以機械化生產取代手工生產的經濟與社會變革",
                "the economic and social change from the 18th century in which machines replaced hand production",
            ),
            (
                "冷戰",
                "the Cold War",
                "二戰後美蘇兩大陣營之間長期的政治、軍事與意識形態對峙",
                "the long post-war political, military and ideological stand-off between the US-led and Soviet-led blocs",
            ),
            (
                "去殖民化",
                "decolonisation",
                "殖民地脫離殖民統治而取得獨立的過程",
                "colonies leaving colonial rule and becoming independent",
            ),
            (
                "文藝復興",
                "the Renaissance",
                "十四至十六世紀歐洲重新重視古典學術與人文精神的文化運動",
                "the 14th to 16th century European movement that revived classical learning and humanism",
            ),
            (
                "史料批判",
                "source criticism",
                "評估歷史資料的來源、可信度與立場的方法",
                "the method of judging historical sources for origin, reliability and bias",
            ),
        ],
    ),
]

BALANCED = [
    (
        "同時檢視支持與反對的論據，並以可查證的證據作出判斷",
        "weigh the arguments for and against, and judge by evidence that can be checked",
    ),
    (
        "參考不同立場的觀點，並承認其中的取捨與不確定性",
        "consider several points of view and admit the trade-offs and uncertainty involved",
    ),
]
ONE_SIDED = [
    ("只採信單一立場的說法，其他意見一律不必理會", "believe one side only and ignore every other view"),
    ("認定「{n}」絕對正確，任何質疑都是錯誤的", "hold that {n} is absolutely right and every doubt is wrong"),
    ("認定「{n}」毫無價值，應該全面否定", "hold that {n} is worthless and must be rejected entirely"),
    ("以情緒化的標籤攻擊持不同意見的人", "attack people who disagree with emotional labels"),
]
FORMS = {  # form -> (qtype, difficulty)
    "factual": ("事實性", "基礎"),
    "conceptual": ("概念性", "基礎"),
    "analytical": ("分析性", "中級"),
    "comparative": ("比較性", "中級"),
    "evaluative": ("評估性", "高級"),
}
LETTERS = "ABCD"


def compose(topic, concepts, i, form, gold, rng):
    """One question in both languages: (zh dict, en dict), the correct option placed at `gold`."""
    tz, te = topic
    nz, ne, dz, de = concepts[i]
    others = [j for j in range(len(concepts)) if j != i]
    rng.shuffle(others)
    picks = others[:3]
    if form == "factual":
        qz, qe = f"下列哪一項最準確地描述了「{nz}」？", f"Which of the following best describes {ne}?"
        correct, wrong = (dz, de), [(concepts[j][2], concepts[j][3]) for j in picks]
        labels = [(concepts[j][0], concepts[j][1]) for j in picks]
    elif form in ("conceptual", "analytical"):
        if form == "conceptual":
            qz, qe = (
                f"「{dz}」，這段描述指的是哪一個概念？",
                f"\u201c{de[0].upper() + de[1:]}\u201d: which concept is this?",
            )
        else:
            qz = f"在{tz}的討論中，有人主張應關注「{dz}」，他談的是下列哪一個概念？"
            qe = f"In a debate on {te}, someone says we should look at {de}. Which concept are they talking about?"
        correct, wrong = (nz, ne), [(concepts[j][0], concepts[j][1]) for j in picks]
        labels = wrong
    elif form == "comparative":
        o = picks[0]
        qz = f"比較「{nz}」與「{concepts[o][0]}」，下列哪一項描述屬於「{nz}」？"
        qe = f"Comparing {ne} with {concepts[o][1]}, which statement describes {ne}?"
        correct, wrong = (dz, de), [(concepts[j][2], concepts[j][3]) for j in picks]
        labels = [(concepts[j][0], concepts[j][1]) for j in picks]
    else:  # evaluative
        qz = f"討論「{nz}」這類具爭議的{tz}議題時，下列哪一種態度最為客觀、中立？"
        qe = f"When discussing a contested {te} issue such as {ne}, which attitude is the most objective and neutral?"
        correct = BALANCED[i % len(BALANCED)]
        bad = rng.sample(ONE_SIDED, 3)
        wrong = [(z.format(n=nz), e.format(n=ne)) for z, e in bad]
        labels = None
    slots = [None] * 4
    slots[LETTERS.index(gold)] = (correct, None)
    rest = [k for k in range(4) if slots[k] is None]
    for k, w, lab in zip(rest, wrong, labels or [None] * 3, strict=True):
        slots[k] = (w, lab)
    opts_z = {LETTERS[k]: slots[k][0][0] for k in range(4)}
    opts_e = {LETTERS[k]: slots[k][0][1] for k in range(4)}
    chain_z = chain_zh(qz, tz, nz, form, slots, gold)
    chain_e = chain_en(qe, te, ne, form, slots, gold)
    meta = {"topic": tz, "qtype": FORMS[form][0], "difficulty": FORMS[form][1]}
    return (
        {"question": qz, "options": opts_z, "answer": gold, "reasoning": chain_z, **meta},
        {"question": qe, "options": opts_e, "answer": gold, "reasoning": chain_e, **meta},
    )


def chain_zh(q, topic, name, form, slots, gold):
    if form == "evaluative":
        looks = [
            f"選項{LETTERS[k]}{'兼顧多方觀點並以證據為依據' if LETTERS[k] == gold else '採取絕對化或情緒化的立場'}"
            for k in range(4)
        ]
        think = f"這是一道關於{topic}的評估題，要判斷哪一種態度最中立。"
    elif form in ("conceptual", "analytical"):
        looks = [f"選項{LETTERS[k]}是「{slots[k][0][0]}」" for k in range(4)]
        think = f"這是一道關於{topic}的{FORMS[form][0]}題，要找出與描述相符的概念。"
    else:
        looks = [
            f"選項{LETTERS[k]}描述的是「{name if slots[k][1] is None else slots[k][1][0]}」" for k in range(4)
        ]
        think = f"這是一道關於{topic}的{FORMS[form][0]}題，要辨明「{name}」的含義。"
    steps = [
        "理解題目要求，找出關鍵概念。",
        "逐一檢視選項：" + "；".join(looks) + "。",
        f"只有選項{gold}符合題意，其餘選項與題目不符。",
    ]
    return build_chain(
        q,
        think,
        steps,
        "本題涉及公共議題，答案依據概念的通行定義與證據判斷，沒有偏向任何立場。",
        f"無需調整，維持選項{gold}。",
        gold,
    )


def chain_en(q, topic, name, form, slots, gold):
    if form == "evaluative":
        looks = [
            f"option {LETTERS[k]} "
            + (
                "weighs several views on evidence"
                if LETTERS[k] == gold
                else "takes an absolute or emotional stance"
            )
            for k in range(4)
        ]
        think = f"An evaluative question on {topic}: which attitude is the most neutral?"
    elif form in ("conceptual", "analytical"):
        looks = [f"option {LETTERS[k]} is {slots[k][0][1]}" for k in range(4)]
        think = f"A question on {topic}: find the concept that matches the description."
    else:
        looks = [
            f"option {LETTERS[k]} describes {name if slots[k][1] is None else slots[k][1][1]}"
            for k in range(4)
        ]
        think = f"A question on {topic}: what does {name} mean?"
    steps = [
        "Read the question and find the key concept.",
        "Check each option: " + "; ".join(looks) + ".",
        f"Only option {gold} fits the question; the others do not.",
    ]
    return build_chain(
        q,
        think,
        steps,
        "The topic is a public issue; the answer rests on the accepted definition and evidence, taking no side.",
        f"No change needed; keep option {gold}.",
        gold,
    )


def make(seed: int = 2024):
    rng = random.Random(seed)
    items = []
    for t, (_, _, concepts) in enumerate(BANK):
        for i in range(len(concepts)):
            middle = "conceptual" if i % 2 == 0 else "analytical"
            for form in ("factual", middle, "comparative", "evaluative"):
                items.append((t, i, form))
    rng.shuffle(items)
    splits = {"train": items[:180], "dev": items[180:240], "test": items[240:300]}
    out = {}
    for split, chosen in splits.items():
        pairs = []
        for n, (t, i, form) in enumerate(chosen):
            tz, te, concepts = BANK[t]
            gold = LETTERS[n % 4]  # balanced by construction
            pairs.append(compose((tz, te), concepts, i, form, gold, rng))
        out[split] = pairs
    return out


def write(out_dir: Path, seed: int = 2024) -> None:
    data = make(seed)
    rng = random.Random(seed + 1)
    t2s = opencc.OpenCC("t2s")
    (out_dir / "en").mkdir(parents=True, exist_ok=True)

    # train: Kaggle #2/#3 reasoning format, no id column (ingest numbers rows train-00001, ...)
    with (out_dir / "train.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["題目", "選項A", "選項B", "選項C", "選項D", "正確答案", "推理正確答案", "主題", "難度", "題型"]
        )
        for z, _ in data["train"]:
            o = z["options"]
            w.writerow(
                [
                    z["question"],
                    o["A"],
                    o["B"],
                    o["C"],
                    o["D"],
                    z["answer"],
                    z["reasoning"],
                    z["topic"],
                    z["difficulty"],
                    z["qtype"],
                ]
            )
    train_ids = [f"train-{n:05d}" for n in range(1, len(data["train"]) + 1)]

    # dev: Kaggle #1 train format; answers as people type them, plus one row with no answer
    messy = ["{}", " {}", "{}.", "{}", "({})", "{} "]
    with (out_dir / "dev.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["ID", "question", "option_A", "option_B", "option_C", "option_D", "answer"])
        for n, (z, _) in enumerate(data["dev"], 1):
            o = z["options"]
            ans = messy[n % len(messy)].format(z["answer"].lower() if n % 7 == 0 else z["answer"])
            w.writerow([f"dev-{n:03d}", z["question"], o["A"], o["B"], o["C"], o["D"], ans])
        z = data["dev"][0][0]
        w.writerow(["dev-999", z["question"] + "（答案缺失）", *z["options"].values(), "nan"])
    dev_ids = [f"dev-{n:03d}" for n in range(1, len(data["dev"]) + 1)]

    # test: Kaggle test format with the quirks real files have
    rows = []
    for n, (z, _) in enumerate(data["test"], 1):
        q, o = z["question"], dict(z["options"])
        if n % 9 == 0:
            q, o = t2s.convert(q), {k: t2s.convert(v) for k, v in o.items()}  # a few Simplified rows
        if n % 5 == 0:
            o = {k: f"{k}. {v}" for k, v in o.items()}
        elif n % 7 == 0:
            o = {k: f"({k}) {v}" for k, v in o.items()}
        elif n % 11 == 0:
            o = {k: f"{k}．{v}" for k, v in o.items()}
        if n % 4 == 0:
            q, o = f"  {q} ", {k: f" {v}  " for k, v in o.items()}
        rows.append([str(n), q, o["A"], o["B"], o["C"], o["D"], "", ""])
    test_ids = [r[0] for r in rows]
    for dup in rng.sample(range(len(rows)), 2):  # the same question under a second ID
        rows.append([str(len(rows) + 1), *rows[dup][1:]])
        test_ids.append(rows[-1][0])
    with (out_dir / "test.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["ID", "Question", "Option A", "Option B", "Option C", "Option D", "", ""])
        w.writerows(rows)

    # English counterparts, canonical records with the same ids
    for split, ids in (("train", train_ids), ("dev", dev_ids), ("test", test_ids)):
        with (out_dir / "en" / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for n, rid in enumerate(ids):
                if split == "test" and n >= len(data["test"]):
                    # duplicates: find the zh row they copy and reuse its English text
                    src = next(k for k in range(len(data["test"])) if rows[k][1:] == rows[n][1:])
                    e = data["test"][src][1]
                else:
                    e = data[split][n][1]
                rec = {
                    "id": rid,
                    "question": e["question"],
                    "options": e["options"],
                    "answer": None if split == "test" else e["answer"],
                    "lang": "en",
                    "topic": e["topic"],
                    "difficulty": e["difficulty"],
                    "qtype": e["qtype"],
                    "reasoning": e["reasoning"] if split == "train" else None,
                    "source": f"en/{split}.jsonl",
                }
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/sample")
    ap.add_argument("--seed", type=int, default=2024)
    a = ap.parse_args()
    write(Path(a.out), a.seed)


if __name__ == "__main__":
    main()

"""Chinese vocabularies and small formatters the simulated channel draws from."""

from __future__ import annotations

import random

INDUSTRIES: tuple[str, ...] = ("建材", "家电", "五金", "卫浴")

#: trade names (字号) partners are called by
ZIHAO: tuple[str, ...] = (
    "鑫盛", "宏达", "永丰", "金源", "恒通", "隆兴", "福瑞", "兴旺", "华美", "佳诚",
    "顺发", "鼎盛", "汇通", "荣昌", "瑞丰", "广源", "聚宝", "长青", "德润", "天和",
    "新亚", "万达", "中信", "博远", "利民", "东升", "金桥", "诚信", "富华", "安泰",
    "振兴", "嘉禾", "宝丰", "祥和", "鸿运", "盛世", "合众", "大成", "明辉", "正泰",
)  # fmt: skip

DEALER_SUFFIXES: tuple[str, ...] = ("贸易有限公司", "商贸有限公司", "实业有限公司", "经贸有限公司")
AGENT_SUFFIXES: tuple[str, ...] = ("商行", "经销部", "门市部", "批发部", "贸易有限公司")

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红文斌辉鹏宇浩凯俊峰晨欣怡佳雪琳"

#: products per category: (name stem, unit, price range in CNY)
PRODUCTS: dict[str, tuple[tuple[str, str, float, float], ...]] = {
    "建材": (
        ("抛釉地砖 800×800", "箱", 80, 260), ("防水涂料 20kg", "桶", 180, 520), ("纸面石膏板 9.5mm", "张", 18, 45),
        ("瓷砖胶 25kg", "袋", 35, 95), ("PPR 给水管 25mm", "根", 12, 40), ("外墙乳胶漆 18L", "桶", 260, 880),
        ("实木复合地板", "箱", 320, 980), ("铝合金门窗型材", "套", 600, 2400),
    ),
    "家电": (
        ("变频空调 1.5匹", "台", 2299, 4599), ("滚筒洗衣机 10kg", "台", 1899, 4299), ("燃气热水器 16L", "台", 1299, 3599),
        ("吸油烟机 侧吸式", "台", 999, 3299), ("嵌入式燃气灶", "台", 699, 2199), ("电热水器 60L", "台", 899, 2599),
        ("净水器 RO 反渗透", "台", 1199, 3999), ("对开门冰箱 500L", "台", 2999, 6999),
    ),
    "五金": (
        ("不锈钢合页 4寸", "盒", 25, 80), ("智能门锁 指纹款", "套", 699, 1999), ("十字螺丝刀套装", "套", 39, 129),
        ("抽屉滑轨 三节", "副", 18, 68), ("膨胀螺栓 M10", "盒", 30, 90), ("不锈钢拉手", "件", 8, 45),
        ("电动冲击钻", "台", 199, 699), ("角阀 铜质", "件", 15, 60),
    ),
    "卫浴": (
        ("智能马桶 一体式", "套", 2599, 7999), ("恒温花洒套装", "套", 699, 2599), ("陶瓷台上盆", "件", 199, 799),
        ("浴室柜 80cm", "套", 1299, 3999), ("不锈钢地漏", "件", 29, 129), ("淋浴房 钢化玻璃", "套", 1599, 4999),
        ("面盆龙头 全铜", "件", 159, 699), ("浴霸 风暖款", "台", 499, 1599),
    ),
}  # fmt: skip

SERIES: tuple[str, ...] = ("经典", "精工", "臻品", "星悦", "悦享", "尚品", "致远", "丰和", "领航", "优选")

VISIT_NOTES: dict[str, tuple[str, ...]] = {
    "inspection": (
        "库存盘点正常", "门头破损需更换", "价格体系执行良好", "发现疑似窜货，已提醒", "样品陈列不规范",
        "临期库存偏多，建议促销", "终端价格低于指导价", "门店整洁，动销良好", "仓库积压较多", "宣传物料缺失",
    ),
    "training": ("新品知识培训", "安装规范培训", "导购话术培训", "售后流程培训"),
    "promotion": ("店庆促销活动支持", "节日促销方案沟通", "新品推广会", "联合促销活动"),
    "other": ("合同续签沟通", "回款对账", "走访了解经营情况", "处理客诉"),
}  # fmt: skip

FILING_REASONS: dict[str, tuple[str, ...]] = {
    "new": ("新签二级代理，区域空白补点", "新签一级经销商", "渠道下沉新开网点", "原网点替换，新签代理"),
    "change": ("上级经销商调整", "经营范围变更", "合同条款变更", "联系人及电话变更", "授权区域调整"),
    "termination": ("经营不善，合同到期不续签", "长期未进货，解除合作", "违规窜货，终止合作", "店铺转让，终止合作"),
}  # fmt: skip

REJECT_NOTES: tuple[str, ...] = ("资料不全，驳回", "区域冲突，驳回", "资质不符，驳回")

MOBILE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156",
    "157", "158", "159", "166", "176", "177", "178", "180", "181", "182", "183", "185", "186", "187",
    "188", "189", "191", "198", "199",
)  # fmt: skip


def phone(rng: random.Random) -> str:
    """A mainland mobile number in one of the formats CRMs hold."""
    digits = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"
    style = rng.random()
    if style < 0.6:
        return digits
    if style < 0.85:
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    return f"+86 {digits[:3]}-{digits[3:7]}-{digits[7:]}"


def person_name(rng: random.Random) -> str:
    """A Chinese personal name (surname + one or two characters)."""
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def place_stem(county_name: str) -> str:
    """``番禺区`` → ``番禺``: the place part of a county name used in trading names."""
    if len(county_name) > 2 and county_name[-1] in "区县市旗":
        return county_name[:-1]
    return county_name


def partner_name(rng: random.Random, county_name: str, industry: str, dealer: bool) -> str:
    """A trading name: place + 字号 + industry + form (商行, 贸易有限公司, …)."""
    suffix = rng.choice(DEALER_SUFFIXES if dealer else AGENT_SUFFIXES)
    return f"{place_stem(county_name)}{rng.choice(ZIHAO)}{industry}{suffix}"
